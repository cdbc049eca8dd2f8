export { createEmulator } from './create-emulator.js';
export type { Emulator } from './emulator.js';
export { EMULATOR_DEFAULTS } from './emulator-options.js';
export type {
  BurstOptions,
  EmulatorOptions,
  EmulatorOptionsInput,
  FaultOptions,
  LatencyOptions,
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
