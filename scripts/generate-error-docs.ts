/** Writes docs/errors.md from the error catalogue: `pnpm docs:errors`. */
import { writeFileSync } from 'node:fs';
import { ERROR_CATALOGUE } from '../packages/shared/src/errors.ts';
const lines = [
  '# Error catalogue',
  '',
  'Every failure that crosses a boundary is an `AppError` with a stable `code` from',
  '`packages/shared/src/errors.ts` (this page mirrors it; a unit test checks that every code is here).',
  'Match on `code`, never on the message. A failed job\'s `failedReason` starts with its code',
  '(`UPSTREAM_CONTENT_REJECTED: DashScope DataInspectionFailed (HTTP 400): …`), and `job.failed`',
  'events carry it as `data.error.code`, with the upstream `code` and `request_id` where there is one.',
  '',
  'What the worker does, by `retry`:',
  '',
  '| retry | the worker | attempts used |',
  '|---|---|---|',
  '| `never` | fails the job at once (BullMQ `UnrecoverableError`), emits `job.failed` | 1 |',
  '| `transient` | retries with exponential backoff and jitter (1 s doubling to 60 s, `Retry-After` honoured), emits `job.failed` after the last attempt | up to `ZIMAGE_MAX_ATTEMPTS` |',
  '| `throttle` | returns the job to the queue and slows every worker down (`queue.rateLimit`, 1 s doubling to 30 s, or `Retry-After`) | none |',
  '| `account` | disables that account (its work moves to the other accounts); when no account is left, pauses the queue and logs a fatal line saying what to do; jobs wait, nothing fails; `zimage resume` after the fix | none |',
  '| `pause` | pauses the queue at once: a configuration problem that would make every job pay and fail alike; the job keeps its checkpoint, so after the fix and `zimage resume` only the download is redone | none |',
  '',
  '| code | retry | HTTP | what happened | what to do |',
  '|---|---|---|---|---|',
];
for (const [code, spec] of Object.entries(ERROR_CATALOGUE)) {
  lines.push(`| \`${code}\` | ${spec.retry} | ${spec.httpStatus} | ${spec.summary} | ${spec.action} |`);
}
lines.push('', '## DashScope codes', '', 'How upstream answers map to our codes (by `code` first, HTTP status second) is the table in',
  '`packages/worker/src/classify-upstream-error.ts`; the upstream contract is `reference/dashscope-api.md` §3.2.',
  'Unknown codes fall back to the status: 429 → `UPSTREAM_THROTTLED`, 401 → `UPSTREAM_AUTH_INVALID`, 403 → `UPSTREAM_ACCESS_DENIED`,',
  '404 → `UPSTREAM_MODEL_NOT_FOUND`, 502/504 → `UPSTREAM_GATEWAY`, 503 → `UPSTREAM_UNAVAILABLE`, other 5xx → `UPSTREAM_INTERNAL`,',
  'other 4xx → `UPSTREAM_REJECTED`. `Throttling.AllocationQuota` with "Free allocated quota exceeded" is `UPSTREAM_FREE_QUOTA_EXHAUSTED` (account), otherwise a throttle that waits 60 s.', '');
writeFileSync(new URL('../docs/errors.md', import.meta.url), lines.join('\n'));
