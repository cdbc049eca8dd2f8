import { createHash } from 'node:crypto';

/**
 * Everything an image's pixels depend on. Images are never stored: a download regenerates the PNG
 * from this key, which the signed URL carries, so memory stays flat however many are generated.
 */
export interface ImageKey {
  /** 16 hex digits of SHA-256 over the (truncated) prompt. */
  readonly promptHash: string;
  readonly seed: number;
  readonly width: number;
  readonly height: number;
}

export function hashPrompt(prompt: string): string {
  return createHash('sha256').update(prompt, 'utf8').digest('hex').slice(0, 16);
}

export function imageKeyId(key: ImageKey): string {
  return `${key.width}x${key.height}-s${key.seed}-${key.promptHash}`;
}
