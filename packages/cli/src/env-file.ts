/**
 * `--env-file PATH`: variables from a .env file, read with Node's own parser
 * (`process.loadEnvFile`) before a command parses its environment. Variables already set in the
 * environment win, so a deployment's own settings are never overridden by a file left beside it.
 *
 * Node itself checks an `--env-file` argument at start-up, even one after the script name: a
 * missing or unparsable file stops the process there ("node: PATH: not found", exit 9) before
 * this code runs. The error below covers what passes that check and still cannot be read.
 */
import { AppError } from '@zimage/shared';

export function loadEnvFile(path: string): void {
  try {
    process.loadEnvFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // The file's contents are never echoed: it holds secrets.
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a folder' : 'it cannot be read';
    throw new AppError('CONFIG_INVALID', `--env-file: cannot read ${path}: ${why}`, { action: 'Give the path of a readable .env file (KEY=value lines), or leave the option out.' });
  }
}
