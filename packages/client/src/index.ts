export { createZimageClient, type ZimageClient, type ZimageClientOptions } from './create-client.js';
export { waitForJob, type Job, type WaitForJobOptions } from './wait-for-job.js';
export { ZimageApiError, type ApiErrorBody } from './zimage-api-error.js';
export type { components, operations, paths } from './schema.js';

import type { components } from './schema.js';
export type JobRequest = components['schemas']['JobRequest'];
export type Batch = components['schemas']['Batch'];
export type Schedule = components['schemas']['Schedule'];
export type ScheduleSpec = components['schemas']['ScheduleSpec'];
export type ZimageEvent = components['schemas']['Event'];
