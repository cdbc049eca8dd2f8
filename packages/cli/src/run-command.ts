/**
 * How every command ends: in the error catalogue's shape — `error CODE: message`, the field
 * issues, then `→ what to do` — without a stack, and with an exit code scripts can branch on.
 * Anything that is not an AppError is a bug: it prints as INTERNAL, and its stack only when
 * LOG_LEVEL=debug (a stack trace is for the person fixing it, not the person running it).
 *   0 ok · 1 failed · 2 bad input or configuration · 3 Redis unavailable
 */
import { asRedisUnavailable, ERROR_CATALOGUE, isAppError } from '@zimage/shared';

export const EXIT = { ok: 0, failed: 1, badInput: 2, unavailable: 3 } as const;

const BUG_ACTION = 'This is a bug in zimage: report it with this output (LOG_LEVEL=debug adds the stack trace).';

// biome-ignore lint/suspicious/noConfusingVoidType: an action may return nothing (exit code 0)
export function runCommand<A extends unknown[]>(action: (...args: A) => Promise<number | void>) {
  return async (...args: A): Promise<void> => {
    try {
      const code = await action(...args);
      process.exitCode = code ?? EXIT.ok;
    } catch (error) {
      process.exitCode = reportError(error);
    }
  };
}

/** Commander's "error: unknown option '--x'" in the catalogue's shape. */
export function usageError(text: string): string {
  const message = text.replace(/^error:\s*/i, '').trim();
  return `error USAGE_INVALID: ${message}\n  → ${ERROR_CATALOGUE.USAGE_INVALID.action}\n`;
}

export function reportError(thrown: unknown): number {
  // Redis lost mid-command is exit 3 in our words, not an INTERNAL bug.
  const error = asRedisUnavailable(thrown, 'running the command');
  if (isAppError(error)) {
    process.stderr.write(`error ${error.code}: ${error.message}\n`);
    const issues = error.details['issues'] as { field: string; message: string }[] | undefined;
    for (const issue of issues ?? []) process.stderr.write(`  - ${issue.field || '(request)'}: ${issue.message}\n`);
    // An AppError from another copy of the package (isAppError by name) may lack `action`.
    process.stderr.write(`  → ${error.action ?? ERROR_CATALOGUE[error.code].action}\n`);
    if (error.code === 'REDIS_UNAVAILABLE') return EXIT.unavailable;
    return ERROR_CATALOGUE[error.code].httpStatus < 500 && ERROR_CATALOGUE[error.code].httpStatus >= 400 ? EXIT.badInput : error.code === 'CONFIG_INVALID' ? EXIT.badInput : EXIT.failed;
  }
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`error INTERNAL: ${message}\n  → ${BUG_ACTION}\n`);
  if (process.env['LOG_LEVEL'] === 'debug' && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  return EXIT.failed;
}
