export { createEmulator } from './create-emulator.js';
export type { Emulator } from './emulator.js';
export { EMULATOR_DEFAULTS, LIMITER_MODELS } from './emulator-options.js';
export type {
  BurstOptions,
  DriftStep,
  EmulatorOptions,
  EmulatorOptionsInput,
  FaultOptions,
  LatencyOptions,
  LimiterModel,
  ModerationCode,
  QuotaOptions,
  Region,
} from './emulator-options.js';
export { FAULT_CATALOGUE, FAULT_KINDS } from './fault-catalogue.js';
export type { FaultEffect, FaultKind, FaultStep } from './fault-catalogue.js';
export { GENERATION_PATH } from './handle-generation.js';
export { RESET_PATH, STATS_PATH } from './handle-control.js';
export { PRICE_MICRO_USD } from './pricing.js';
export type { EmulatorStats } from './stats.js';
export { createLimiter } from './create-limiter.js';
export type { LimiterCounts, LimiterReport, LimiterSecond } from './managed-limiter.js';
export type { LimiterInit, LimiterSettings, RateLimiter, ThrottleCode } from './rate-limiter.js';
