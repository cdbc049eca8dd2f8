/**
 * The SSRF guard for outbound webhook deliveries.
 *
 * A webhook URL is chosen by whoever submits a job, so without a guard a worker could be made to
 * POST to its own loopback services, the private network, or the cloud metadata endpoint (which
 * hands out instance credentials). Only public unicast addresses may be called.
 *
 * Why the check happens twice:
 * - `checkWebhookUrl` runs when the URL is accepted (enqueue) and again before each delivery. At
 *   enqueue it gives the caller an immediate, explicit refusal instead of a job whose deliveries
 *   all fail later.
 * - `guardedLookup` runs inside the connection itself. DNS answers can change between the check
 *   and the connect (DNS rebinding: a name that resolved to a public address a moment ago now
 *   resolves to 127.0.0.1), so the only address that can be trusted is the one the socket is
 *   about to use. Checking at connect time closes that gap; the earlier check stays for the clear,
 *   early error message. IP-literal hosts never reach a lookup function (Node connects to them
 *   directly), which is fine: a literal cannot rebind, and `checkWebhookUrl` has checked it.
 *
 * The allow-list (`ZIMAGE_WEBHOOK_ALLOWED_HOSTS`) exists for development (a receiver on localhost
 * or in a compose network); an allow-listed host skips the address check entirely.
 */
import { lookup as dnsLookup, promises as dnsPromises, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { AppError } from '../errors.js';

export interface WebhookUrlPolicy {
  /** Lowercased host entries from ZIMAGE_WEBHOOK_ALLOWED_HOSTS. */
  readonly allowedHosts: readonly string[];
}

export type Resolver = (hostname: string) => Promise<{ address: string; family: number }[]>;

/** Default resolver: dns.promises.lookup(hostname, { all: true, verbatim: true }). */
export const systemResolver: Resolver = (hostname) => dnsPromises.lookup(hostname, { all: true, verbatim: true });

// ── address classification ──────────────────────────────────────────────────────────────────────

type IPv4 = ipaddr.IPv4;
type IPv6 = ipaddr.IPv6;

/**
 * Instance-metadata endpoints, named explicitly so the refusal says what was at stake. Each also
 * falls in a blocked range (link-local, unique-local, carrier-grade NAT); the name is the point.
 */
const CLOUD_METADATA = new Set([
  '169.254.169.254', // AWS, GCP, Azure, OpenStack, ...
  'fd00:ec2::254', // AWS over IPv6
  '100.100.100.200', // Alibaba Cloud
  '168.63.129.16', // Azure WireServer (a public-looking address: blocked only by this list)
]);

/** ipaddr.js range names → the words used in refusals. Anything else non-unicast is 'reserved'. */
const RANGE_REASONS: Readonly<Record<string, string>> = {
  unspecified: 'unspecified',
  broadcast: 'broadcast',
  multicast: 'multicast',
  linkLocal: 'link-local',
  loopback: 'loopback',
  carrierGradeNat: 'carrier-grade NAT',
  private: 'private',
  uniqueLocal: 'unique-local',
  deprecatedSiteLocal: 'site-local',
  reserved: 'reserved',
};

/** The deprecated IPv4-compatible form ::a.b.c.d, which ipaddr.js reports as plain 'unicast'. */
const IPV4_COMPATIBLE = ipaddr.IPv6.parseCIDR('::/96');
/** The NAT64 well-known prefix (RFC 6052), used by DNS64 on IPv6-only networks. */
const NAT64_WELL_KNOWN = ipaddr.IPv6.parseCIDR('64:ff9b::/96');
/** Global unicast: the only IPv6 space allocated for the public internet. */
const IPV6_GLOBAL_UNICAST = ipaddr.IPv6.parseCIDR('2000::/3');

/**
 * Why this IP literal must not be called, or undefined when it is a public unicast address. e.g.
 * 'loopback', 'private', 'link-local', 'cloud metadata', 'unique-local', 'carrier-grade NAT', ...
 * Brackets (`[::1]`) are accepted; anything that is not an IP address is refused.
 */
export function blockedAddressReason(address: string): string | undefined {
  const literal = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  let ip: IPv4 | IPv6;
  try {
    ip = ipaddr.parse(literal);
  } catch {
    return 'not an IP address';
  }
  return ip.kind() === 'ipv4' ? ipv4Reason(ip as IPv4) : ipv6Reason(ip as IPv6);
}

function ipv4Reason(ip: IPv4): string | undefined {
  if (CLOUD_METADATA.has(ip.toString())) return 'cloud metadata';
  return rangeReason(ip.range());
}

function ipv6Reason(ip: IPv6): string | undefined {
  // Compare without the zone id (fe80::1%eth0); the range does not depend on it.
  if (CLOUD_METADATA.has(new ipaddr.IPv6(ip.parts).toString())) return 'cloud metadata';

  // Forms that carry an IPv4 address are judged by that address: ::ffff:127.0.0.1 is loopback.
  const range: string = ip.range(); // the .d.ts lists fewer names than the library returns
  let embedded: IPv4[] = [];
  switch (range) {
    case 'ipv4Mapped': // ::ffff:a.b.c.d
    case 'rfc6145': // ::ffff:0:a.b.c.d (SIIT, IPv4-translated)
      embedded = [lastFourBytes(ip)];
      break;
    case 'rfc6052':
      // 64:ff9b::/96 embeds the address in its last 32 bits. The local-use prefix 64:ff9b:1::/48
      // (RFC 8215) may embed it elsewhere, and only ever leads to a local translator: refuse it.
      if (!ip.match(NAT64_WELL_KNOWN)) return 'reserved (local-use NAT64)';
      embedded = [lastFourBytes(ip)];
      break;
    case '6to4': // 2002:AABB:CCDD::/48 carries a.b.c.d in bits 16..47
      embedded = [ipv4FromParts(ip.parts[1], ip.parts[2])];
      break;
    case 'teredo': // 2001:0::/32: server a.b.c.d in bits 32..63, client in bits 96..127, inverted
      embedded = [
        ipv4FromParts(ip.parts[2], ip.parts[3]),
        ipv4FromParts(~(ip.parts[6] ?? 0) & 0xffff, ~(ip.parts[7] ?? 0) & 0xffff),
      ];
      break;
    case 'unicast':
      if (ip.match(IPV4_COMPATIBLE)) embedded = [lastFourBytes(ip)]; // ::7f00:1 = ::127.0.0.1
      break;
    default:
      return rangeReason(range);
  }
  if (embedded.length > 0) {
    for (const v4 of embedded) {
      const reason = ipv4Reason(v4);
      if (reason !== undefined) return reason;
    }
    return undefined;
  }
  // ipaddr.js calls everything outside its special ranges 'unicast', including unallocated space
  // such as 100::/8 or 4000::/3; only 2000::/3 is routed on the public internet.
  if (!ip.match(IPV6_GLOBAL_UNICAST)) return 'reserved';
  return undefined;
}

function rangeReason(range: string): string | undefined {
  if (range === 'unicast') return undefined;
  return RANGE_REASONS[range] ?? `reserved (${range})`;
}

function lastFourBytes(ip: IPv6): IPv4 {
  return ipv4FromParts(ip.parts[6], ip.parts[7]);
}

function ipv4FromParts(high: number | undefined, low: number | undefined): IPv4 {
  const hi = high ?? 0;
  const lo = low ?? 0;
  return new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
}

// ── the allow-list ──────────────────────────────────────────────────────────────────────────────

interface AllowEntry {
  /** Canonical host as `URL#hostname` writes it, without IPv6 brackets; for a wildcard, the suffix. */
  readonly host: string;
  readonly wildcard: boolean;
  readonly port: number | undefined;
}

const ENV_NAME = 'ZIMAGE_WEBHOOK_ALLOWED_HOSTS';

/**
 * Parses the env value ("a.example, localhost:8080, *.internal.test") into entries; throws
 * TypeError naming the bad entry. Empty/undefined → []. Entries come back canonical: lowercased,
 * IDNs in punycode, IPv6 literals in brackets (`[::1]`, `[::1]:8080`).
 */
export function parseAllowedHosts(value: string | undefined): string[] {
  if (value === undefined) return [];
  const entries: string[] = [];
  for (const raw of value.split(',')) {
    if (raw.trim() === '') continue; // "a, b," or an empty variable
    const parsed = parseEntry(raw);
    if (typeof parsed === 'string') {
      throw new TypeError(`${ENV_NAME}: invalid entry "${raw.trim()}": ${parsed}`);
    }
    entries.push(formatEntry(parsed));
  }
  return entries;
}

/** True when the URL's host (and port) matches an allow-list entry. */
export function isAllowedHost(url: URL, policy: WebhookUrlPolicy): boolean {
  const host = stripBrackets(url.hostname);
  const port = url.port === '' ? defaultPort(url.protocol) : Number(url.port);
  return allowEntries(policy).some(
    (entry) => hostMatches(entry, host) && (entry.port === undefined || entry.port === port),
  );
}

/** Host-only match for the lookup hook, which never learns the port: `localhost:8080` allows `localhost`. */
function isAllowedHostname(hostname: string, policy: WebhookUrlPolicy): boolean {
  const host = canonicalHost(stripBrackets(hostname.toLowerCase()));
  if (host === undefined) return false;
  return allowEntries(policy).some((entry) => hostMatches(entry, host));
}

/**
 * The policy's entries, parsed again at each use: a policy may be built by hand (tests, options)
 * without going through `parseAllowedHosts`. Entries that do not parse match nothing.
 */
function allowEntries(policy: WebhookUrlPolicy): AllowEntry[] {
  return policy.allowedHosts.map(parseEntry).filter((entry): entry is AllowEntry => typeof entry !== 'string');
}

function hostMatches(entry: AllowEntry, host: string): boolean {
  if (!entry.wildcard) return host === entry.host;
  // `*.example.com` covers any depth of subdomain but not example.com itself, and never an IP.
  return isIP(host) === 0 && host.endsWith(`.${entry.host}`);
}

/** Parses one allow-list entry, or returns what is wrong with it. */
function parseEntry(raw: string): AllowEntry | string {
  const entry = raw.trim().toLowerCase();
  if (entry === '') return 'empty entry';

  let hostPart: string;
  let portPart: string | undefined;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(entry);
  if (bracketed) {
    hostPart = bracketed[1] ?? '';
    portPart = bracketed[2];
    if (isIP(hostPart) !== 6) return 'not a valid IPv6 address';
  } else if (entry.indexOf(':') !== entry.lastIndexOf(':')) {
    // Two or more colons: a bare IPv6 literal, which cannot carry a port without brackets.
    hostPart = entry;
    if (isIP(hostPart) !== 6) return 'not a valid IPv6 address (write [address]:port to add a port)';
  } else {
    const colon = entry.indexOf(':');
    hostPart = colon === -1 ? entry : entry.slice(0, colon);
    portPart = colon === -1 ? undefined : entry.slice(colon + 1);
  }

  let port: number | undefined;
  if (portPart !== undefined) {
    port = /^\d{1,5}$/.test(portPart) ? Number(portPart) : Number.NaN;
    if (!(port >= 1 && port <= 65535)) return 'the port must be a number from 1 to 65535';
  }

  const wildcard = hostPart.startsWith('*.');
  if (wildcard) hostPart = hostPart.slice(2);
  if (hostPart.includes('*')) return 'a wildcard must be a leading "*." label, as in *.example.com';

  const host = canonicalHost(hostPart);
  if (host === undefined) return 'not a valid host name or IP address';
  if (wildcard && isIP(host) !== 0) return 'a wildcard cannot apply to an IP address';
  return { host, wildcard, port };
}

function formatEntry(entry: AllowEntry): string {
  const host = isIP(entry.host) === 6 ? `[${entry.host}]` : entry.host;
  return `${entry.wildcard ? '*.' : ''}${host}${entry.port === undefined ? '' : `:${entry.port}`}`;
}

/**
 * The host as the WHATWG URL parser writes it (lowercase, punycode, IPv4 in dotted decimal, IPv6
 * compressed), without brackets, so an entry compares equal to `URL#hostname` by plain `===`.
 * Returns undefined for anything that is not a plain host name or IP address.
 */
function canonicalHost(host: string): string | undefined {
  if (isIP(host) === 6) {
    try {
      return stripBrackets(new URL(`http://[${host}]/`).hostname);
    } catch {
      return undefined; // e.g. a zone id (fe80::1%eth0), which URLs cannot carry
    }
  }
  // Letters (IDNs), digits, dots, hyphens and underscores (compose service names) only: no
  // path, userinfo, port or percent-escape can slip through the URL parser below.
  if (!/^[\p{L}\p{N}._-]+$/u.test(host)) return undefined;
  let hostname: string;
  try {
    hostname = new URL(`http://${host}/`).hostname;
  } catch {
    return undefined;
  }
  if (isIP(hostname) !== 0) return hostname;
  const labels = (hostname.endsWith('.') ? hostname.slice(0, -1) : hostname).split('.');
  const validLabel = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
  return labels.every((label) => validLabel.test(label)) ? hostname : undefined;
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function defaultPort(protocol: string): number | undefined {
  if (protocol === 'http:') return 80;
  if (protocol === 'https:') return 443;
  return undefined;
}

// ── the checks ──────────────────────────────────────────────────────────────────────────────────

/**
 * The refusal. The message names the host, never the full URL: its path or query may carry
 * tokens, and this message ends up in logs, job failures and API answers.
 */
function refusal(
  host: string,
  reason: string,
  options: { address?: string; literal?: boolean; cause?: unknown } = {},
): AppError {
  const { address, literal, cause } = options;
  const what =
    address === undefined
      ? `(${reason})`
      : literal
        ? `is a blocked address (${reason})`
        : `resolves to ${address} (${reason})`;
  return new AppError('WEBHOOK_URL_REFUSED', `Webhook URL refused: host ${host || '(none)'} ${what}`, {
    details: address === undefined ? { host, reason } : { host, address, reason },
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Checks a webhook URL before it is accepted (at enqueue) and before each delivery: scheme http(s),
 * no userinfo, then (unless allow-listed) resolves the host and refuses if ANY resolved address is
 * blocked, or if it does not resolve. IP-literal hosts are checked without DNS. Throws
 * AppError('WEBHOOK_URL_REFUSED') whose message names the URL's host (never the full URL: its query
 * may carry tokens), the resolved address and the reason, e.g.
 * "Webhook URL refused: host internal.example resolves to 10.0.0.5 (private)".
 * details: { host, address?, reason }.
 */
export async function checkWebhookUrl(
  url: string | URL,
  policy: WebhookUrlPolicy,
  resolve: Resolver = systemResolver,
): Promise<URL> {
  let parsed: URL;
  if (typeof url === 'string') {
    try {
      parsed = new URL(url);
    } catch {
      throw new AppError('WEBHOOK_URL_REFUSED', 'Webhook URL refused: not an absolute URL', {
        details: { reason: 'not an absolute URL' },
      });
    }
  } else {
    parsed = url;
  }
  const host = parsed.hostname;

  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw refusal(host, `scheme ${parsed.protocol} is not http or https`);
  }
  // The client would send these as an Authorization header to whatever the host turns out to be.
  if (parsed.username !== '' || parsed.password !== '') {
    throw refusal(host, 'credentials in the URL');
  }
  if (isAllowedHost(parsed, policy)) return parsed;

  const literal = stripBrackets(host);
  if (isIP(literal) !== 0) {
    const reason = blockedAddressReason(literal);
    if (reason !== undefined) throw refusal(host, reason, { address: literal, literal: true });
    return parsed;
  }

  let addresses: { address: string; family: number }[];
  try {
    addresses = await resolve(host);
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    throw refusal(host, `does not resolve${typeof code === 'string' ? `: ${code}` : ''}`, { cause: error });
  }
  if (addresses.length === 0) throw refusal(host, 'does not resolve: no addresses');
  // Any blocked answer refuses the URL: the client may pick any of them (and happy eyeballs will).
  for (const { address } of addresses) {
    const reason = blockedAddressReason(address);
    if (reason !== undefined) throw refusal(host, reason, { address });
  }
  return parsed;
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address?: string | LookupAddress[],
  family?: number,
) => void;

/**
 * A `lookup` function for net.connect / undici's `connect: { lookup }` option that resolves like
 * dns.lookup but fails the connection (callback with an error whose code is 'WEBHOOK_URL_REFUSED'
 * and message like the above) when the resolved address is blocked — this closes the DNS-rebinding
 * gap between check and connect. Allow-listed hosts (by hostname only, port unknown here — match
 * entries ignoring port) pass through. Honours the `all` option (Node's net module calls lookup
 * with { all: true } when autoSelectFamily is on) and returns the same callback shapes as dns.lookup.
 */
export function guardedLookup(policy: WebhookUrlPolicy): typeof import('node:dns').lookup {
  function lookup(
    hostname: string,
    optionsOrCallback: number | LookupOptions | LookupCallback | undefined,
    maybeCallback?: LookupCallback,
  ): void {
    const callback = typeof optionsOrCallback === 'function' ? optionsOrCallback : maybeCallback;
    if (typeof callback !== 'function') throw new TypeError('lookup: callback must be a function');
    const options: LookupOptions =
      typeof optionsOrCallback === 'number'
        ? { family: optionsOrCallback }
        : typeof optionsOrCallback === 'object' && optionsOrCallback !== null
          ? optionsOrCallback
          : {};

    if (isAllowedHostname(hostname, policy)) {
      dnsLookup(hostname, options, callback);
      return;
    }
    // Always ask for every address and check them all, even when the caller wants one: the same
    // rule as checkWebhookUrl, and dns.lookup's single answer is simply the first of the list.
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) {
        callback(error);
        return;
      }
      for (const { address } of addresses) {
        const reason = blockedAddressReason(address);
        if (reason !== undefined) {
          callback(refusal(hostname, reason, { address }) as AppError & NodeJS.ErrnoException);
          return;
        }
      }
      const first = addresses[0];
      if (first === undefined) {
        callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', hostname }));
      } else if (options.all === true) {
        callback(null, addresses);
      } else {
        callback(null, first.address, first.family);
      }
    });
  }
  // dns.lookup's type also declares `__promisify__`, a type-level artefact of its overloads; the
  // runtime shape (hostname, options?, callback) is what net and undici call.
  return lookup as unknown as typeof import('node:dns').lookup;
}
