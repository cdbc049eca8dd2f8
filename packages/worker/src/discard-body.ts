/** Stops reading a response body; the abort it causes is expected, not an unhandled error. */
export function discard(body: { on(event: 'error', listener: () => void): unknown; destroy(): unknown }): void {
  body.on('error', () => {});
  body.destroy();
}
