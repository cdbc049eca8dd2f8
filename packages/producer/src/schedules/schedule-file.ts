/**
 * Where a scheduled pipeline's CSV may come from: the one folder the operator names
 * (`ZIMAGE_SCHEDULE_FILES_DIR`), and nowhere else on the worker's host. An API token is a
 * credential for submitting image jobs, not for reading the worker's files: without this a
 * schedule naming `/srv/app/.env` put each line of it into a batch's results manifest.
 *
 * A stored schedule names its file relative to that folder. The tick resolves it (symlinks
 * included) and refuses anything outside, anything that is not a regular file (a FIFO or a device
 * would block or never end), and anything over the size cap; it then copies the file, streamed
 * and capped, from the descriptor it checked — so a file swapped after the check is never read.
 */
import { constants, createWriteStream } from 'node:fs';
import { open, readlink, realpath } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { AppError } from '@zimage/shared';

/** Largest schedule CSV: 100,000 rows of about 600 bytes. */
export const MAX_SCHEDULE_FILE_BYTES = 64 * 1024 * 1024;

const NO_DIR = 'file sources need ZIMAGE_SCHEDULE_FILES_DIR (the folder workers read schedule files from); without it a schedule takes prompts or a feed';

/**
 * The stored form of a schedule's `csv`: a path inside `dir`, relative to it. `from` is the folder
 * a relative path is read against (the pipelines file's folder for `schedule apply`, `dir` itself
 * for the API). Returns the problem, in our words, when the path is not allowed.
 */
export function confineSchedulePath(dir: string | undefined, csv: string, from?: string): { path: string } | { problem: string } {
  if (dir === undefined) return { problem: NO_DIR };
  if (csv.includes('\0')) return { problem: 'must not contain a NUL character' };
  const root = resolve(dir);
  if (from === undefined && isAbsolute(csv)) return { problem: `must be a path relative to ZIMAGE_SCHEDULE_FILES_DIR, not an absolute path` };
  const inside = relative(root, resolve(from ?? root, csv));
  if (inside === '' || inside === '..' || inside.startsWith(`..${sep}`) || isAbsolute(inside)) {
    return { problem: 'must name a file inside ZIMAGE_SCHEDULE_FILES_DIR' };
  }
  return { path: inside };
}

/**
 * Copies the schedule file `csv` (relative to `dir`) to `destination`, after checking it is a
 * regular file inside `dir` (symlinks resolved) of at most `maxBytes`. Throws SCHEDULE_INVALID.
 */
export async function copyScheduleFile(dir: string | undefined, csv: string, destination: string, maxBytes = MAX_SCHEDULE_FILE_BYTES): Promise<void> {
  const confined = confineSchedulePath(dir, csv);
  if ('problem' in confined) throw new AppError('SCHEDULE_INVALID', `csv ${csv}: ${confined.problem}`);
  const root = await realpath(dir as string).catch((error: NodeJS.ErrnoException) => {
    throw new AppError('SCHEDULE_INVALID', `ZIMAGE_SCHEDULE_FILES_DIR ${dir}: ${error.code === 'ENOENT' ? 'no such folder' : error.message}`);
  });
  const real = await realpath(join(root, confined.path)).catch((error: NodeJS.ErrnoException) => {
    throw new AppError('SCHEDULE_INVALID', `csv ${csv}: ${error.code === 'ENOENT' ? 'no such file in ZIMAGE_SCHEDULE_FILES_DIR' : error.message}`);
  });
  if (!real.startsWith(root + sep)) throw new AppError('SCHEDULE_INVALID', `csv ${csv}: leads outside ZIMAGE_SCHEDULE_FILES_DIR (a symbolic link)`);
  // Non-blocking, so that opening a FIFO returns at once (and is then refused as not a file);
  // no-follow, so that a link swapped in after realpath is not followed.
  const handle = await open(real, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW).catch((error: NodeJS.ErrnoException) => {
    throw new AppError('SCHEDULE_INVALID', `csv ${csv}: cannot open (${error.code ?? error.message})`);
  });
  try {
    // Where the descriptor really is (Linux): a folder on the path swapped for a link between
    // realpath and open would otherwise pass, since O_NOFOLLOW guards only the last component.
    const opened = await readlink(`/proc/self/fd/${handle.fd}`).catch(() => undefined);
    if (opened !== undefined && !opened.startsWith(root + sep)) throw new AppError('SCHEDULE_INVALID', `csv ${csv}: leads outside ZIMAGE_SCHEDULE_FILES_DIR`);
    const info = await handle.stat();
    if (!info.isFile()) throw new AppError('SCHEDULE_INVALID', `csv ${csv}: not a regular file`);
    if (info.size > maxBytes) throw new AppError('SCHEDULE_INVALID', `csv ${csv}: ${info.size} bytes, over the limit of ${maxBytes}`);
    let seen = 0;
    // The file may grow after the check: the copy stops at the limit too.
    const cap = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        seen += chunk.length;
        if (seen > maxBytes) done(new AppError('SCHEDULE_INVALID', `csv ${csv}: over the limit of ${maxBytes} bytes`));
        else done(null, chunk);
      },
    });
    await pipeline(handle.createReadStream({ autoClose: false }), cap, createWriteStream(destination, { flags: 'wx', mode: 0o600 }));
  } finally {
    await handle.close();
  }
}
