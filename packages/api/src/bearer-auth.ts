/**
 * Who may call the API: a bearer token from ZIMAGE_API_TOKENS. Browsers (the gallery, Bull Board)
 * may send the token as the password of HTTP Basic auth instead, since they cannot add headers.
 *
 * Tokens are compared in constant time: both sides are hashed to 32 bytes (so lengths never
 * differ) and every configured token is compared, whatever matched.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

export function createTokenCheck(tokens: readonly string[]): (authorization: string | undefined) => boolean {
  const resolve = createTokenResolver(tokens.map((token) => [token, true] as const));
  return (authorization) => resolve(authorization) === true;
}

/** Which value the presented token stands for (a tenant's token → its tenant), or undefined. */
export function createTokenResolver<T>(entries: ReadonlyArray<readonly [token: string, value: T]>): (authorization: string | undefined) => T | undefined {
  const digests = entries.map(([token, value]) => [digest(token), value] as const);
  return (authorization) => {
    const presented = presentedToken(authorization);
    if (presented === undefined) return undefined;
    const candidate = digest(presented);
    let found: T | undefined;
    for (const [d, value] of digests) if (timingSafeEqual(d, candidate)) found = value;
    return found;
  };
}

function presentedToken(authorization: string | undefined): string | undefined {
  if (!authorization) return undefined;
  const [scheme, value] = authorization.trim().split(/\s+/, 2);
  if (!scheme || !value) return undefined;
  if (scheme.toLowerCase() === 'bearer') return value;
  if (scheme.toLowerCase() === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon >= 0 ? decoded.slice(colon + 1) : undefined;
  }
  return undefined;
}
