import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LookupAddress } from 'node:dns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../errors.js';
import {
  blockedAddressReason,
  checkWebhookUrl,
  guardedLookup,
  isAllowedHost,
  parseAllowedHosts,
  type Resolver,
  type WebhookUrlPolicy,
} from './ssrf-guard.js';

const NONE: WebhookUrlPolicy = { allowedHosts: [] };

/** A resolver that answers from a table and fails like dns.lookup for anything else. */
function fakeResolver(table: Record<string, string[]>): Resolver {
  return async (hostname) => {
    const addresses = table[hostname];
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
}

/** Never called: IP literals and refused schemes must not reach DNS. */
const noDns: Resolver = async (hostname) => {
  throw new Error(`unexpected DNS lookup of ${hostname}`);
};

async function refusal(promise: Promise<unknown>): Promise<AppError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AppError);
  expect((error as AppError).code).toBe('WEBHOOK_URL_REFUSED');
  return error as AppError;
}

describe('blockedAddressReason', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.8.9.10', 'loopback'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.5.4', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'cloud metadata'],
    ['fd00:ec2::254', 'cloud metadata'],
    ['100.100.100.200', 'cloud metadata'],
    ['168.63.129.16', 'cloud metadata'], // Azure WireServer
    ['169.254.1.1', 'link-local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['fc00::1', 'unique-local'],
    ['fd12:3456::1', 'unique-local'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['192.0.2.1', 'reserved'],
    ['2001:db8::1', 'reserved'],
    ['fec0::1', 'site-local'],
    ['4000::1', 'reserved'], // outside 2000::/3, which ipaddr.js would call unicast
    ['not-an-ip', 'not an IP address'],
  ])('%s → %s', (address, reason) => {
    expect(blockedAddressReason(address)).toBe(reason);
  });

  it.each([
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:169.254.169.254', 'cloud metadata'],
    ['::ffff:10.0.0.1', 'private'],
    ['::127.0.0.1', 'loopback'], // deprecated IPv4-compatible form
    ['::7f00:1', 'loopback'],
    ['::ffff:0:7f00:1', 'loopback'], // IPv4-translated (RFC 6145)
    ['64:ff9b::7f00:1', 'loopback'], // NAT64 well-known prefix
    ['64:ff9b::a9fe:a9fe', 'cloud metadata'],
    ['64:ff9b:1::1', 'reserved (local-use NAT64)'],
    ['2002:7f00:1::1', 'loopback'], // 6to4 of 127.0.0.1
    ['2002:c0a8:101::1', 'private'], // 6to4 of 192.168.1.1
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'loopback'], // Teredo, client 127.0.0.1 (inverted)
  ])('IPv4 wrapped in IPv6: %s → %s', (address, reason) => {
    expect(blockedAddressReason(address)).toBe(reason);
  });

  it.each([
    '8.8.8.8',
    '1.1.1.1',
    '2606:4700:4700::1111',
    '::ffff:8.8.8.8',
    '64:ff9b::808:808', // DNS64 answer for 8.8.8.8 on an IPv6-only network
    '2002:808:808::1', // 6to4 of 8.8.8.8
  ])('%s is public unicast', (address) => {
    expect(blockedAddressReason(address)).toBeUndefined();
  });
});

describe('parseAllowedHosts', () => {
  it('parses, trims, lowercases and canonicalises entries', () => {
    expect(
      parseAllowedHosts(
        ' A.Example , localhost:8080, *.Internal.test, [::1], ::1, [0:0:0:0:0:0:0:1]:9000, 127.0.0.1, bücher.example,',
      ),
    ).toEqual([
      'a.example',
      'localhost:8080',
      '*.internal.test',
      '[::1]',
      '[::1]',
      '[::1]:9000',
      '127.0.0.1',
      'xn--bcher-kva.example',
    ]);
  });

  it('returns [] for empty or missing values', () => {
    expect(parseAllowedHosts(undefined)).toEqual([]);
    expect(parseAllowedHosts('')).toEqual([]);
    expect(parseAllowedHosts(' , ')).toEqual([]);
  });

  it.each([
    ['http://a.example', 'http://a.example'],
    ['a.example/path', 'a.example/path'],
    ['user@a.example', 'user@a.example'],
    ['a.example:0', 'a.example:0'],
    ['a.example:70000', 'a.example:70000'],
    ['a.example:http', 'a.example:http'],
    ['*', '*'],
    ['a.*.example', 'a.*.example'],
    ['*.10.0.0.1', '*.10.0.0.1'],
    ['[::1', '[::1'],
    ['[nope]:80', '[nope]:80'],
    ['::1:8080:zz', '::1:8080:zz'],
    ['a..example', 'a..example'],
    ['-a.example', '-a.example'],
  ])('refuses %s with a TypeError naming it', (value, named) => {
    expect(() => parseAllowedHosts(`ok.example, ${value}`)).toThrow(TypeError);
    expect(() => parseAllowedHosts(`ok.example, ${value}`)).toThrow(`"${named}"`);
  });
});

describe('isAllowedHost', () => {
  const policy: WebhookUrlPolicy = {
    allowedHosts: parseAllowedHosts('exact.test, localhost:8080, *.internal.test, [::1], 10.0.0.1:443'),
  };

  it.each([
    ['http://exact.test/hook', true],
    ['https://EXACT.test:9999/hook', true], // no port in the entry: any port
    ['http://sub.exact.test/', false], // exact entries do not cover subdomains
    ['http://localhost:8080/', true],
    ['http://localhost/', false], // wrong port
    ['http://localhost:8081/', false],
    ['http://a.internal.test/', true],
    ['http://a.b.internal.test:1234/', true],
    ['http://internal.test/', false], // the wildcard needs a label before the suffix
    ['http://evilinternal.test/', false],
    ['http://[::1]:3000/', true],
    ['http://[0:0::1]/', true],
    ['https://10.0.0.1/', true], // 443 is the https default
    ['http://10.0.0.1/', false], // 80 is not 443
    ['https://10.0.0.1:8443/', false],
  ])('%s → %s', (url, expected) => {
    expect(isAllowedHost(new URL(url), policy)).toBe(expected);
  });

  it('accepts hand-built policies with unbracketed IPv6 entries', () => {
    expect(isAllowedHost(new URL('http://[::1]/'), { allowedHosts: ['::1'] })).toBe(true);
    expect(isAllowedHost(new URL('http://[::1]/'), { allowedHosts: ['[::1]'] })).toBe(true);
    expect(isAllowedHost(new URL('http://[::2]/'), { allowedHosts: ['::1'] })).toBe(false);
  });
});

describe('checkWebhookUrl', () => {
  it('refuses 127.0.0.1 without an exception and allows it when listed', async () => {
    const error = await refusal(checkWebhookUrl('http://127.0.0.1:8080/hook', NONE, noDns));
    expect(error.message).toBe('Webhook URL refused: host 127.0.0.1 is a blocked address (loopback)');
    expect(error.details).toEqual({ host: '127.0.0.1', address: '127.0.0.1', reason: 'loopback' });
    expect(error.retry).toBe('never');

    const url = await checkWebhookUrl('http://127.0.0.1:8080/hook', { allowedHosts: ['127.0.0.1'] }, noDns);
    expect(url.href).toBe('http://127.0.0.1:8080/hook');
  });

  it.each([
    ['http://169.254.169.254/latest/meta-data/', 'cloud metadata'],
    ['http://100.100.100.200/latest/meta-data/', 'cloud metadata'],
    ['http://[fd00:ec2::254]/', 'cloud metadata'],
    ['http://10.0.0.1/', 'private'],
    ['http://172.16.5.4/', 'private'],
    ['http://192.168.1.1/', 'private'],
    ['http://[::1]/', 'loopback'],
    ['http://[::ffff:127.0.0.1]/', 'loopback'],
    ['http://[::ffff:7f00:1]/', 'loopback'],
    ['http://[::ffff:169.254.169.254]/', 'cloud metadata'],
    ['http://[fe80::1]/', 'link-local'],
    ['http://0.0.0.0/', 'unspecified'],
    ['http://0/', 'unspecified'], // the URL parser turns "0" into 0.0.0.0
    ['http://2130706433/', 'loopback'], // and this into 127.0.0.1
    ['http://100.64.1.1/', 'carrier-grade NAT'],
  ])('refuses the IP literal in %s as %s', async (url, reason) => {
    const error = await refusal(checkWebhookUrl(url, NONE, noDns));
    expect(error.details['reason']).toBe(reason);
    expect(error.message).toContain(`(${reason})`);
  });

  it('allows public addresses', async () => {
    const resolve = fakeResolver({ 'hooks.example.com': ['8.8.8.8', '2606:4700:4700::1111'] });
    await expect(checkWebhookUrl('https://hooks.example.com/x', NONE, resolve)).resolves.toBeInstanceOf(URL);
    await expect(checkWebhookUrl('https://8.8.8.8/x', NONE, noDns)).resolves.toBeInstanceOf(URL);
    await expect(checkWebhookUrl(new URL('https://[2606:4700:4700::1111]/x'), NONE, noDns)).resolves.toBeInstanceOf(URL);
  });

  it('refuses localhost through the system resolver', async () => {
    const error = await refusal(checkWebhookUrl('http://localhost:3000/hook', NONE));
    expect(error.message).toMatch(/^Webhook URL refused: host localhost resolves to (127\.0\.0\.1|::1) \(loopback\)$/);
    expect(error.details['reason']).toBe('loopback');
  });

  it('refuses a name when ANY of its addresses is blocked', async () => {
    const resolve = fakeResolver({ 'internal.example': ['8.8.8.8', '10.0.0.5'], 'mixed.example': ['8.8.8.8', '127.0.0.1'] });
    const error = await refusal(checkWebhookUrl('https://internal.example/hook', NONE, resolve));
    expect(error.message).toBe('Webhook URL refused: host internal.example resolves to 10.0.0.5 (private)');
    expect(error.details).toEqual({ host: 'internal.example', address: '10.0.0.5', reason: 'private' });
    const mixed = await refusal(checkWebhookUrl('https://mixed.example/hook', NONE, resolve));
    expect(mixed.details).toEqual({ host: 'mixed.example', address: '127.0.0.1', reason: 'loopback' });
  });

  it('never puts the path or query in the message', async () => {
    const resolve = fakeResolver({ 'internal.example': ['10.0.0.5'] });
    const error = await refusal(
      checkWebhookUrl('https://internal.example/hook?token=s3cr3t#frag', NONE, resolve),
    );
    expect(error.message).not.toContain('s3cr3t');
    expect(error.message).not.toContain('/hook');
  });

  it.each(['ftp://files.example.com/x', 'file:///etc/passwd', 'gopher://files.example.com/', 'javascript:alert(1)'])(
    'refuses the scheme of %s',
    async (url) => {
      const error = await refusal(checkWebhookUrl(url, NONE, noDns));
      expect(error.message).toMatch(/scheme \S+ is not http or https/);
    },
  );

  it('refuses userinfo, even for allow-listed hosts', async () => {
    const resolve = fakeResolver({ 'hooks.example.com': ['8.8.8.8'] });
    for (const url of ['https://user:s3cr3t@hooks.example.com/', 'https://s3cr3t@hooks.example.com/', 'https://:s3cr3t@hooks.example.com/']) {
      const error = await refusal(checkWebhookUrl(url, NONE, resolve));
      expect(error.message).toBe('Webhook URL refused: host hooks.example.com (credentials in the URL)');
      expect(error.message).not.toContain('s3cr3t');
    }
    await refusal(checkWebhookUrl('http://u:p@localhost/', { allowedHosts: ['localhost'] }, noDns));
  });

  it('refuses a host that does not resolve, with a clear message', async () => {
    const error = await refusal(checkWebhookUrl('https://nowhere.invalid/hook', NONE, fakeResolver({})));
    expect(error.message).toBe('Webhook URL refused: host nowhere.invalid (does not resolve: ENOTFOUND)');
    expect(error.details).toEqual({ host: 'nowhere.invalid', reason: 'does not resolve: ENOTFOUND' });
    expect((error.cause as { code?: string }).code).toBe('ENOTFOUND');

    const empty = await refusal(checkWebhookUrl('https://empty.example/', NONE, async () => []));
    expect(empty.details['reason']).toBe('does not resolve: no addresses');
  });

  it('refuses strings that are not URLs', async () => {
    const error = await refusal(checkWebhookUrl('not a url', NONE, noDns));
    expect(error.message).toBe('Webhook URL refused: not an absolute URL');
  });

  it('skips the address check for wildcard and host:port entries', async () => {
    const resolve = fakeResolver({ 'svc.internal.test': ['10.1.2.3'], localhost: ['127.0.0.1'] });
    const policy = { allowedHosts: parseAllowedHosts('*.internal.test, localhost:8080') };
    await expect(checkWebhookUrl('http://svc.internal.test/hook', policy, noDns)).resolves.toBeInstanceOf(URL);
    await expect(checkWebhookUrl('http://localhost:8080/hook', policy, noDns)).resolves.toBeInstanceOf(URL);
    const wrongPort = await refusal(checkWebhookUrl('http://localhost:9090/hook', policy, resolve));
    expect(wrongPort.details['reason']).toBe('loopback');
    await refusal(checkWebhookUrl('http://internal.test/hook', policy, fakeResolver({ 'internal.test': ['10.0.0.1'] })));
  });
});

describe('guardedLookup', () => {
  type Answer = { error: NodeJS.ErrnoException | null; address?: string | LookupAddress[]; family?: number };

  function callLookup(lookup: ReturnType<typeof guardedLookup>, hostname: string, options?: object): Promise<Answer> {
    return new Promise((resolve) => {
      const callback = (error: NodeJS.ErrnoException | null, address?: string | LookupAddress[], family?: number) =>
        resolve({ error, address, family });
      const call = lookup as unknown as (...args: unknown[]) => void;
      if (options === undefined) call(hostname, callback);
      else call(hostname, options, callback);
    });
  }

  it('refuses localhost, with and without { all: true }', async () => {
    const lookup = guardedLookup(NONE);
    for (const options of [undefined, {}, { all: true }, { all: false, family: 4 }, 4]) {
      const { error, address } = await callLookup(lookup, 'localhost', options as object | undefined);
      expect(error?.code).toBe('WEBHOOK_URL_REFUSED');
      expect(error?.message).toMatch(/^Webhook URL refused: host localhost resolves to \S+ \(loopback\)$/);
      expect(address).toBeUndefined();
    }
  });

  it('passes localhost through when allow-listed (ignoring the entry port), in dns.lookup shapes', async () => {
    const lookup = guardedLookup({ allowedHosts: ['localhost:8080'] });
    const one = await callLookup(lookup, 'localhost', { family: 4 });
    expect(one).toEqual({ error: null, address: '127.0.0.1', family: 4 });
    const bare = await callLookup(lookup, 'LOCALHOST');
    expect(bare.error).toBeNull();
    expect(typeof bare.address).toBe('string');
    const all = await callLookup(lookup, 'localhost', { all: true, family: 4 });
    expect(all.error).toBeNull();
    expect(all.address).toEqual([{ address: '127.0.0.1', family: 4 }]);
  });

  it('returns public answers in dns.lookup shapes', async () => {
    // An IP literal resolves to itself without DNS.
    const lookup = guardedLookup(NONE);
    expect(await callLookup(lookup, '8.8.8.8')).toEqual({ error: null, address: '8.8.8.8', family: 4 });
    expect(await callLookup(lookup, '8.8.8.8', { all: true })).toEqual({
      error: null,
      address: [{ address: '8.8.8.8', family: 4 }],
      family: undefined,
    });
  });
});

describe('guardedLookup on a real connection', () => {
  let server: http.Server;
  let port: number;

  beforeAll(async () => {
    server = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  });

  // undici is not a dependency of @zimage/shared, so this uses node:http's `lookup` option, which
  // reaches net.connect the same way undici's `connect: { lookup }` does. With autoSelectFamily on,
  // net calls the lookup with { all: true }; `seen` records which shape each request used.
  function get(policy: WebhookUrlPolicy, autoSelectFamily: boolean, seen: unknown[]): Promise<string> {
    const guarded = guardedLookup(policy) as unknown as (...args: unknown[]) => void;
    const lookup = ((hostname: string, options: unknown, callback: unknown) => {
      seen.push((options as { all?: boolean }).all === true);
      guarded(hostname, options, callback);
    }) as unknown as ReturnType<typeof guardedLookup>;
    // `autoSelectFamily` is missing from this @types/node's ClientRequestArgs, though Node 20 reads it.
    const options: http.RequestOptions & { autoSelectFamily: boolean } = { lookup, agent: false, autoSelectFamily };
    return new Promise((resolve, reject) => {
      const request = http.get(`http://localhost:${port}/`, options, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve(body));
        response.on('error', reject);
      });
      request.on('error', reject);
    });
  }

  it.each([true, false])('refuses the connection (autoSelectFamily: %s)', async (autoSelectFamily) => {
    const seen: unknown[] = [];
    const error = await get(NONE, autoSelectFamily, seen).then(
      () => undefined,
      (e: unknown) => e as NodeJS.ErrnoException,
    );
    expect(seen).toEqual([autoSelectFamily]);
    expect(error?.code).toBe('WEBHOOK_URL_REFUSED');
    expect(error?.message).toMatch(/^Webhook URL refused: host localhost resolves to (127\.0\.0\.1|::1) \(loopback\)$/);
  });

  it.each([true, false])('connects when localhost is allow-listed (autoSelectFamily: %s)', async (autoSelectFamily) => {
    const seen: unknown[] = [];
    await expect(get({ allowedHosts: ['localhost'] }, autoSelectFamily, seen)).resolves.toBe('ok');
    expect(seen).toEqual([autoSelectFamily]);
  });
});
