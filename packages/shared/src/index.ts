export {
  AppError,
  ERROR_CATALOGUE,
  coerceError,
  isAppError,
  toAppError,
  type AppErrorOptions,
  type ErrorCode,
  type ErrorSpec,
  type RetryPolicy,
} from './errors.js';
export {
  baseEnvSchema,
  dashscopeBaseUrl,
  insecureBaseUrlProblem,
  loadConfig,
  requireAccount,
  producerEnvSchema,
  REGION_BASE_URLS,
  workerEnvSchema,
  type BaseEnv,
  type ProducerEnv,
  type WorkerEnv,
} from './config.js';
export { createLogger, scrubSecrets, type CreateLoggerOptions, type Logger } from './logger.js';
export { createRedisConnection, redactRedisUrl, waitForRedis, type RedisRole } from './redis-connection.js';
export {
  batchKey,
  batchResultsKey,
  DEFAULT_PREFIX,
  emittedMarkerKey,
  eventsStreamKey,
  GENERATE_QUEUE,
  pauseReasonKey,
} from './queue-names.js';
export {
  ASPECTS,
  checkPixels,
  DEFAULT_SIZE,
  formatSize,
  MAX_PIXELS,
  MIN_PIXELS,
  parseSize,
  RECOMMENDED_SIZES,
  recommendedSize,
  TIERS,
  type Aspect,
  type ImageSize,
  type Tier,
} from './size.js';
export { countPromptChars, MAX_PROMPT_CHARS } from './prompt.js';
export {
  EVENT_TYPES,
  jobRequestSchema,
  MAX_PRIORITY,
  MAX_SEED,
  METADATA_KEY_PATTERN,
  MIN_PRIORITY,
  webhookSchema,
  type EventType,
  type JobRequest,
  type JobRequestInput,
  type WebhookSpec,
} from './job-request.js';
export { checkpointSchema, jobPayloadSchema, type Checkpoint, type JobPayload } from './job-payload.js';
export { jobResultSchema, PRICE_USD, priceOf, REGIONS, type JobResult, type Region } from './job-result.js';
export {
  batchCompletedEventSchema,
  EVENT_SCHEMA_VERSION,
  eventIdFor,
  jobExpiredEventSchema,
  jobFailedEventSchema,
  jobSucceededEventSchema,
  zimageEventSchema,
  type BatchCompletedEvent,
  type JobEvent,
  type JobExpiredEvent,
  type JobFailedEvent,
  type JobSucceededEvent,
  type ZimageEvent,
} from './events.js';
export {
  adjustBatchTotal,
  DEFAULT_PUBLISH_OPTIONS,
  publishJobEvent,
  type JobOutcome,
  type ManifestEntry,
  type PublishOptions,
  type PublishOutcome,
} from './event-publisher.js';
export { renderKeyTemplate, renderTemplate, templateFields } from './key-template.js';
export { formatFieldIssues, toFieldIssues, type FieldIssue } from './validation-issues.js';
export * from './storage/index.js';
export { freePort, startRedisServer, type RedisServerHandle } from './redis-server.js';
export { resolveAccounts, type AccountConfig } from './accounts.js';
