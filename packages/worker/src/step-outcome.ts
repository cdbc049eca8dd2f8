import type { AppError, Checkpoint, JobResult } from '@zimage/shared';

/**
 * How one run of a job ended, as data. `settleOutcome` (settle-outcome.ts) is the one place that
 * turns it into events and BullMQ control flow.
 * - `succeeded`, `failed`, `expired`: terminal, with their event;
 * - `retry`: a transient failure before any image was paid for; uses an attempt (the last one
 *   fails the job);
 * - `requeue`: back to the queue after `delayMs` without using an attempt (throttled, an account
 *   or the fleet paused, a breaker open, an image to generate again);
 * - `park`: a paid image not stored yet. It is kept, never given up: retried after `delayMs`, or,
 *   `forOperator`, held until an operator acts (`zimage jobs retry`).
 */
export type StepOutcome =
  | { kind: 'succeeded'; result: JobResult }
  | { kind: 'failed'; error: AppError; as: 'failed' | 'cancelled' }
  | { kind: 'expired'; deadline: number }
  | { kind: 'retry'; error: AppError }
  | { kind: 'requeue'; delayMs: number; why: string }
  | { kind: 'park'; error: AppError; checkpoint: Checkpoint; delayMs: number; forOperator: boolean };
