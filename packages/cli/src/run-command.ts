/**
 * How every command ends: AppErrors print their message (and field issues) without a stack and
 * exit with a code scripts can branch on; anything else is a bug and prints its stack.
 *   0 ok · 1 failed · 2 bad input or configuration · 3 Redis unavailable
 */
import { ERROR_CATALOGUE, isAppError } from '@zimage/shared';

export const EXIT = { ok: 0, failed: 1, badInput: 2, unavailable: 3 } as const;

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

export function reportError(error: unknown): number {
  if (isAppError(error)) {
    process.stderr.write(`error ${error.code}: ${error.message}\n`);
    const issues = error.details['issues'] as { field: string; message: string }[] | undefined;
    for (const issue of issues ?? []) process.stderr.write(`  - ${issue.field || '(request)'}: ${issue.message}\n`);
    if (error.retry === 'account' || error.code === 'REDIS_UNAVAILABLE') process.stderr.write(`  → ${ERROR_CATALOGUE[error.code].action}\n`);
    if (error.code === 'REDIS_UNAVAILABLE') return EXIT.unavailable;
    return ERROR_CATALOGUE[error.code].httpStatus < 500 && ERROR_CATALOGUE[error.code].httpStatus >= 400 ? EXIT.badInput : error.code === 'CONFIG_INVALID' ? EXIT.badInput : EXIT.failed;
  }
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  return EXIT.failed;
}
