/**
 * The body of a webhook delivery: `{ type, timestamp, data }` as Standard Webhooks recommends,
 * under 20 KB, with links rather than image bytes. For S3 storage a `job.succeeded` carries a
 * presigned GET URL (`data.result.downloadUrl`), made fresh for each attempt so that a retry hours
 * later still links to something that works.
 */
import type { Storage, ZimageEvent } from '@zimage/shared';

export const MAX_BODY_BYTES = 20 * 1024;
/** How long the presigned link in a delivery stays valid. */
export const DOWNLOAD_URL_TTL_SECONDS = 24 * 3600;

export async function buildWebhookBody(event: ZimageEvent, storage: Pick<Storage, 'presignedUrl'> | undefined, now = Date.now()): Promise<string> {
  let data: Record<string, unknown> = { ...event.data, eventId: event.id, schemaVersion: event.version };
  if (event.type === 'job.succeeded' && storage) {
    const downloadUrl = await storage.presignedUrl(event.data.result.key, DOWNLOAD_URL_TTL_SECONDS);
    if (downloadUrl) {
      data = {
        ...data,
        result: { ...event.data.result, downloadUrl, downloadUrlExpiresAt: new Date(now + DOWNLOAD_URL_TTL_SECONDS * 1000).toISOString() },
      };
    }
  }
  const body = JSON.stringify({ type: event.type, timestamp: event.timestamp, data });
  // Prompts (≤ 800 chars) and metadata (≤ 1,800 bytes) keep every event far below this; the check
  // is here so that a future field cannot silently break receivers with body limits.
  const bytes = Buffer.byteLength(body);
  if (bytes > MAX_BODY_BYTES) throw new RangeError(`webhook body of ${event.id} is ${bytes} bytes (limit ${MAX_BODY_BYTES})`);
  return body;
}
