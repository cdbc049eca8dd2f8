import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StatsRecorder } from './stats.js';

export const STATS_PATH = '/__emulator/stats';
export const RESET_PATH = '/__emulator/reset';

/**
 * The emulator's own endpoints (not part of DashScope), for tools running in another process:
 * `GET /__emulator/stats` returns the stats snapshot, `POST /__emulator/reset` clears them (204).
 */
export function handleControl(req: IncomingMessage, res: ServerResponse, path: string, stats: StatsRecorder): void {
  const expected = path === STATS_PATH ? 'GET' : 'POST';
  if (req.method !== expected) {
    sendJson(res, 405, { code: 'MethodNotAllowed', message: `Use ${expected}.` }, { allow: expected });
    return;
  }
  if (path === STATS_PATH) {
    sendJson(res, 200, stats.snapshot());
    return;
  }
  stats.reset();
  res.writeHead(204).end();
}

function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}
