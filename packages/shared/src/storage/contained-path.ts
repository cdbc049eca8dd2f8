import path from 'node:path';
import { AppError } from '../errors.js';

/**
 * Resolves `key` under the absolute folder `root` and refuses any result outside it.
 *
 * `assertSafeObjectKey` already rejects every key we know can escape; this is the second, purely
 * lexical line of defence in case a rule is ever loosened or a platform parses paths differently.
 * Symlinks inside the folder are deliberately followed: an operator may link `output/x` to
 * another disk, and only the operator can create them.
 */
export function resolveContainedPath(root: string, key: string): string {
  const full = path.resolve(root, key);
  const relative = path.relative(root, full);
  if (relative === '' || relative === '..' || relative.startsWith(`..${path.sep}`) || path.isAbsolute(relative)) {
    throw new AppError('STORAGE_KEY_INVALID', `Object key ${JSON.stringify(key)} resolves outside the storage folder`, {
      details: { key, rule: 'outside-folder' },
    });
  }
  return full;
}
