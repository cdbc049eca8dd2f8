/**
 * The enqueue-time SSRF check of webhook URLs, with the answers cached per origin for a minute: a
 * 100,000-row batch that carries one webhook URL resolves its host once, not 100,000 times. The
 * dispatcher checks again at every delivery (and at connect time), so a cached "allowed" cannot
 * turn into a delivery to an address that later became internal.
 */
import { AppError } from '../errors.js';
import { checkWebhookUrl, type Resolver, type WebhookUrlPolicy } from './ssrf-guard.js';

const CACHE_MS = 60_000;
const MAX_ENTRIES = 1000;

export class WebhookUrlChecker {
  readonly #cache = new Map<string, { problem: string | undefined; until: number }>();

  constructor(
    private readonly policy: WebhookUrlPolicy,
    private readonly resolve?: Resolver,
  ) {}

  /** The reason the URL is refused, or undefined when it may be called. */
  async problem(url: string): Promise<string | undefined> {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return 'must be an absolute http(s) URL';
    }
    // Userinfo and scheme are per URL; only the DNS part is per origin.
    const cacheKey = `${parsed.protocol}//${parsed.username || parsed.password ? 'userinfo@' : ''}${parsed.host}`;
    const now = Date.now();
    const hit = this.#cache.get(cacheKey);
    if (hit && hit.until > now) return hit.problem;
    let problem: string | undefined;
    try {
      await checkWebhookUrl(parsed, this.policy, this.resolve);
    } catch (error) {
      if (!(error instanceof AppError) || error.code !== 'WEBHOOK_URL_REFUSED') throw error;
      // A DNS failure may be momentary: refuse this request, but ask again next time.
      if (String(error.details['reason'] ?? '').startsWith('does not resolve')) return error.message;
      problem = error.message;
    }
    if (this.#cache.size >= MAX_ENTRIES) this.#cache.clear();
    this.#cache.set(cacheKey, { problem, until: now + CACHE_MS });
    return problem;
  }
}
