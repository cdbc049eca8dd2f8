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
  apiEnvSchema,
  storageReaderEnvSchema,
  baseEnvSchema,
  dashscopeBaseUrl,
  insecureBaseUrlProblem,
  loadConfig,
  requireAccount,
  producerEnvSchema,
  REGION_BASE_URLS,
  workerEnvSchema,
  type ApiEnv,
  type BaseEnv,
  type ProducerEnv,
  type WorkerEnv,
} from './config.js';
export { groupCommit } from './group-commit.js';
export { parseDuration } from './duration.js';
export {
  DEFAULT_CACHE_NAMESPACE,
  DEFAULT_CACHE_TTL_MS,
  MAX_CACHE_TTL_MS,
  MIN_CACHE_TTL_MS,
  renderCacheEntrySchema,
  renderCacheKey,
  renderHash,
  UPSTREAM_MODEL,
  whyNotCacheable,
  type RenderCacheEntry,
  type RenderInput,
} from './render-cache.js';
export { createLogger, scrubSecrets, type CreateLoggerOptions, type Logger } from './logger.js';
export { createRedisConnection, redactRedisUrl, waitForRedis, type RedisRole } from './redis-connection.js';
export { asRedisUnavailable, isRedisConnectionError, isSocketError } from './redis-errors.js';
export {
  apiIdempotencyKey,
  batchJobsKey,
  cancelChannel,
  cancelledJobKey,
  cancelRequestKey,
  batchKey,
  batchIndexKey,
  batchResultsKey,
  DEFAULT_PREFIX,
  emittedMarkerKey,
  eventsStreamKey,
  GENERATE_QUEUE,
  pauseReasonKey,
  storageHealthKey,
  circuitBreakerKey,
  parkedJobsKey,
  metricsGovernorKey,
  metricsTotalsKey,
  metricsUpstreamKey,
  WEBHOOK_CONSUMER_GROUP,
  WEBHOOK_QUEUE,
  webhookAttemptsKey,
  webhookDeliveriesKey,
  webhookEndpointKey,
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
  toBullPriority,
  isPriorityJob,
  MAX_SEED,
  METADATA_KEY_PATTERN,
  MIN_PRIORITY,
  webhookSchema,
  type EventType,
  type JobRequest,
  type JobRequestInput,
  type WebhookSpec,
} from './job-request.js';
export { checkpointSchema, jobIncarnation, jobPayloadSchema, type Checkpoint, type JobPayload } from './job-payload.js';
export { jobResultSchema, PRICE_USD, priceOf, REGIONS, type JobResult, type Region } from './job-result.js';
export {
  batchCompletedEventSchema,
  budgetExhaustedEventSchema,
  budgetWarningEventSchema,
  EVENT_SCHEMA_VERSION,
  eventIdFor,
  jobExpiredEventSchema,
  jobFailedEventSchema,
  jobSucceededEventSchema,
  scheduleFailedEventSchema,
  zimageEventSchema,
  type BatchCompletedEvent,
  type BudgetExhaustedEvent,
  type BudgetWarningEvent,
  type ScheduleFailedEvent,
  type JobEvent,
  type JobExpiredEvent,
  type JobFailedEvent,
  type JobSucceededEvent,
  type ZimageEvent,
} from './events.js';
export {
  adjustBatchTotal,
  DEFAULT_PUBLISH_OPTIONS,
  reopenBatchJob,
  publishJobEvent,
  type JobOutcome,
  type ManifestEntry,
  type PublishOptions,
  type PublishOutcome,
} from './event-publisher.js';
export { publishEvent } from './publish-event.js';
export { renderKeyTemplate, renderTemplate, templateFields } from './key-template.js';
export { formatFieldIssues, toFieldIssues, type FieldIssue } from './validation-issues.js';
export * from './storage/index.js';
export { MAX_KEY_SEGMENT_BYTES } from './storage/object-key.js';
export {
  assertKeyFitsStorage,
  MAX_FILE_PATH_BYTES,
  storageKeyLimits,
  type StorageKeyLimits,
  type StorageKeyRule,
} from './storage/storage-key-limits.js';
export { freePort, startRedisServer, type RedisServerHandle } from './redis-server.js';
export { resolveAccounts, type AccountConfig } from './accounts.js';
export { parseWebhookSecrets, generateWebhookSecret } from './webhooks/webhook-secret.js';
export { signWebhook, type SignedHeaders } from './webhooks/webhook-signature.js';
export { DEFAULT_RETRY_SCHEDULE, nextRetryDelay, parseRetrySchedule, RETRY_JITTER } from './webhooks/retry-schedule.js';
export { MAX_RETRY_AFTER_MS, parseRetryAfter } from './http/retry-after.js';
export { classifyNetworkError } from './http/network-error.js';
export { declaredLength, discardBody, glimpseBody, readCappedBody, type CappedBody, type ResponseBody } from './http/read-body.js';
export { createOutboundAgent, type OutboundAgentOptions } from './http/outbound-agent.js';
export { urlHost } from './http/url-host.js';
export { parseWebhookEndpoints, type WebhookEndpoint } from './webhooks/webhook-endpoints.js';
export { WebhookUrlChecker } from './webhooks/webhook-url-checker.js';
export { deliveryJobId, perJobEndpointId, type DeliveryJobData } from './webhooks/delivery-job.js';
export { loadWebhookTarget, storeWebhookTargets, WEBHOOK_TARGET_TTL_SECONDS, webhookRefOf, webhookRefSchema, webhookTargetKey, type WebhookRef } from './webhooks/webhook-targets.js';
export {
  DELIVERY_LOG_TTL_SECONDS,
  disableEndpoint,
  enableEndpoint,
  endpointState,
  listAttempts,
  recordAttempt,
  type AttemptOutcome,
  type DeliveryAttempt,
  type EndpointState,
} from './webhooks/delivery-log.js';
export {
  blockedAddressReason,
  checkWebhookUrl,
  guardedLookup,
  isAllowedHost,
  parseAllowedHosts,
  systemResolver,
  type Resolver,
  type WebhookUrlPolicy,
} from './webhooks/ssrf-guard.js';
export {
  consumeEvents,
  ensureConsumerGroup,
  lastEventId,
  readEvents,
  readEventsAfter,
  replayGroupFrom,
  streamIdAt,
  type DeadLetter,
  type EventConsumerOptions,
  type StreamEvent,
} from './event-consumer.js';
export { EVENT_STREAM_BACKSTOP_FACTOR, EVENT_STREAM_HARD_CAP_FACTOR } from './event-publisher.js';
export { readEventGroups, type EventGroupStatus } from './event-group-status.js';
export {
  eventStreamHardCap,
  trimEventStream,
  type EventGroupTrimStatus,
  type EventStreamTrimOptions,
  type EventStreamTrimReport,
} from './event-stream-trim.js';
export {
  EVENT_STREAM_TRIM_INTERVAL_MS,
  startEventStreamTrimmer,
  type EventStreamTrimmer,
  type EventStreamTrimmerOptions,
} from './event-stream-trimmer.js';
export { LATENCY_BUCKETS_SECONDS, readUpstreamMetrics, recordUpstreamCall, type UpstreamMetrics } from './upstream-metrics.js';
export { makeEvent, type EventOfType } from './make-event.js';
export { BACKOFF_TYPE, GENERATE_JOB_NAME, generateJobOptions, type GenerateJobPolicy } from './generate-job-options.js';
export {
  BUDGET_PERIODS,
  BUDGET_SCOPES,
  budgetFields,
  budgetListSchema,
  budgetSchema,
  coversJob,
  parseBudgets,
  periodWindow,
  toMicroUsd,
  type Budget,
  type BudgetInput,
  type BudgetPeriod,
  type BudgetScope,
  type BudgetSubject,
} from './budgets/budget.js';
export { BudgetStore, type BudgetUsage, type Reservation, type ReserveOutcome, type Settlement } from './budgets/budget-store.js';
export { pipelineOfBatch, tickBatchId } from './tick-batch-id.js';
export {
  FAIR_HOLD_DELAY_MS,
  NO_TENANT_LANE,
  countHeldJobs,
  fairShareEnabled,
  fairShareKeys,
  holdInLanes,
  isHeldDelay,
  laneKey,
  laneOf,
  leaveLane,
  takeTurn,
  type FairShareKeys,
  type HeldJob,
} from './fair-share/tenant-lanes.js';
export {
  DEFAULT_TENANT_WEIGHT,
  MAX_TENANT_WEIGHT,
  parseTenantWeights,
  readTenantWeights,
  shareTargets,
  tenantIdSchema,
  tenantWeightSchema,
  writeFairShareEnabled,
  writeTenantWeights,
  type TenantWeights,
} from './fair-share/tenant-weights.js';
export { readGovernorSnapshots, type GovernorSnapshot } from './governor-snapshots.js';
export { readFairShare, type FairShareStatus, type LaneStatus } from './fair-share/fair-share-status.js';
export { BATCH_ID_PATTERN, BATCH_ID_RULE, NAME_PATTERN, NAME_RULE, batchIdSchema, batchIdTenant, nameSchema } from './ids.js';
