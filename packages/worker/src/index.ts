export { startGenerationWorker, type GenerationWorker, type GenerationWorkerOptions } from './generation-worker.js';
export { createProcessor, type GenerationJob, type ProcessorDeps } from './process-job.js';
export { createDashscopeClient, GENERATION_PATH, MODEL, type DashscopeClient, type DashscopeClientOptions, type GenerateInput } from './dashscope-client.js';
export { classifyUpstreamFailure, classifyNetworkError, parseRetryAfter, UPSTREAM_CODE_TABLE } from './classify-upstream-error.js';
export { readGenerationOutput, type GenerationOutput } from './dashscope-response.js';
export { BACKOFF_TYPE, backoffDelay, RETRY_BACKOFF, THROTTLE_BACKOFF, type BackoffPolicy } from './backoff.js';
export { checkImageUrl, DEFAULT_IMAGE_HOSTS, imageHostPolicy, type ImageHostPolicy } from './image-hosts.js';
export { readPngSize } from './png-header.js';
