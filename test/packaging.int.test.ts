/**
 * The packages as a user gets them: `pnpm pack` of each (its prepack builds `dist`), installed
 * with npm into scratch projects outside the workspace, then compiled and run there. Nothing
 * here resolves to our sources: no `zimage-source` condition, no tsx.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { startApi, TOKEN } from './support/api-harness.js';
import { startStack } from './support/stack.js';
import { collect, REPO_ROOT } from './support/run-cli.js';

const run = promisify(execFile);
const PACKAGES = ['shared', 'producer', 'worker', 'emulator', 'api', 'cli', 'client'] as const;
const TSC = join(REPO_ROOT, 'node_modules/typescript/bin/tsc');
/** Packing builds seven packages and npm installs from the registry: generous for a slow machine. */
const SETUP_MS = 600_000;
const STEP_MS = 180_000;

const root = mkdtempSync(join(tmpdir(), 'zimage-pack-'));
const tarballs = join(root, 'tgz');
/** What the children see: a clean environment, but the machine's network settings (a proxy, its CA) for npm. */
const NETWORK = ['NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'SSL_CERT_DIR', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy'];
const env: Record<string, string> = {
  PATH: process.env['PATH'] ?? '',
  HOME: process.env['HOME'] ?? '/tmp',
  ...Object.fromEntries(NETWORK.flatMap((name) => (process.env[name] ? [[name, process.env[name]]] : []))),
  npm_config_update_notifier: 'false',
  npm_config_fund: 'false',
  npm_config_audit: 'false',
};

function tarball(name: (typeof PACKAGES)[number]): string {
  return `file:${join(tarballs, `zimage-${name}-0.1.0.tgz`)}`;
}

/** A project of its own that depends on the tarballs; `overrides` keeps npm from looking for @zimage/* on the registry. */
async function scratchProject(name: string, packages: readonly (typeof PACKAGES)[number][], extra: Record<string, string> = {}): Promise<string> {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const dependencies = Object.fromEntries(packages.map((p) => [`@zimage/${p}`, tarball(p)]));
  const overrides = Object.fromEntries(packages.map((p) => [`@zimage/${p}`, `$@zimage/${p}`]));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module', dependencies: { ...dependencies, ...extra }, overrides }, null, 2));
  await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, env, timeout: STEP_MS }).catch((error: { stderr?: string; message: string }) => {
    throw new Error(`npm install in ${name} failed: ${error.message}\n${error.stderr ?? ''}`);
  });
  return dir;
}

/** Bytes of every file below `dir` (what the install put on disk, apparent size). */
function treeBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += treeBytes(path);
    else if (entry.isFile()) total += statSync(path).size;
  }
  return total;
}

async function tsc(dir: string, project: string): Promise<{ code: number; output: string }> {
  return run(process.execPath, [TSC, '-p', project], { cwd: dir, env, timeout: STEP_MS }).then(
    ({ stdout }) => ({ code: 0, output: stdout }),
    (error: { code?: number; stdout?: string; stderr?: string }) => ({ code: error.code ?? 1, output: `${error.stdout ?? ''}${error.stderr ?? ''}` }),
  );
}

const SERVICE = `import { createProducer, type JobView } from '@zimage/producer';
import { isAppError, type JobRequestInput } from '@zimage/shared';

const producer = await createProducer({ redisUrl: process.env['REDIS_URL'] ?? '', prefix: process.env['ZIMAGE_PREFIX'] ?? 'zimage' });
try {
  const request: JobRequestInput = { prompt: 'A red bicycle', size: '512*512', metadata: { sku: 'B-1' } };
  const { jobId } = await producer.enqueue(request);
  const done: JobView = await producer.waitForJob(jobId, { timeoutMs: 60_000 });
  const read = await producer.getJob(jobId);
  console.log(JSON.stringify({ jobId, state: done.state, key: done.result?.key, read: read?.state }));
} catch (error) {
  console.error(isAppError(error) ? error.code + ': ' + error.message : error);
  process.exitCode = 1;
} finally {
  await producer.close();
}
`;

const MISSPELT = `import { createProducer } from '@zimage/producer';
const producer = await createProducer({ redisUrl: 'redis://127.0.0.1:6379', prefix: 'zimage' });
await producer.enqueue({ promt: 'A red bicycle', size: '512*512' });
`;

const NO_SDK = `import { createStorage, isAppError } from '@zimage/shared';
try {
  await createStorage({ url: 's3://images' }).head('a.png');
  console.log('stored');
} catch (error) {
  console.log(isAppError(error) ? error.code + ': ' + error.message : String(error));
}
`;

/** What a service that only speaks HTTP writes: the API's URL and token are all it knows. */
const CLIENT_SERVICE = `import { createZimageClient, waitForJob, ZimageApiError, type JobRequest } from '@zimage/client';

const client = createZimageClient({ baseUrl: process.env['ZIMAGE_URL'] ?? '', token: process.env['ZIMAGE_TOKEN'] ?? '' });
try {
  const request: JobRequest = { prompt: 'A red bicycle', size: '512*512', metadata: { sku: 'B-1' }, key: 'bikes/{sku}.png' };
  const queued = await client.POST('/v1/jobs', { body: request });
  if (queued.error) throw new ZimageApiError(queued.response.status, queued.error);
  const done = await waitForJob(client, queued.data.id, { timeoutMs: 120_000, intervalMs: 100 });
  const read = await client.GET('/v1/jobs/{id}', { params: { path: { id: queued.data.id } } });
  if (read.error) throw new ZimageApiError(read.response.status, read.error);
  console.log(JSON.stringify({ jobId: queued.data.id, state: done.state, key: done.result?.key, read: read.data.state, readKey: read.data.result?.key }));
} catch (error) {
  console.error(error instanceof ZimageApiError ? error.code + ': ' + error.message : error);
  process.exitCode = 1;
}
`;

const CLIENT_MISSPELT = `import { createZimageClient } from '@zimage/client';
const client = createZimageClient({ baseUrl: 'http://127.0.0.1:8080', token: 'a-token' });
await client.POST('/v1/jobs', { body: { promt: 'A red bicycle', size: '512*512' } });
`;

/** Package names npm installed below `dir`/node_modules, nested ones included (from npm's hidden lockfile). */
function installedPackages(dir: string): string[] {
  const lock = JSON.parse(readFileSync(join(dir, 'node_modules/.package-lock.json'), 'utf8')) as { packages: Record<string, unknown> };
  return Object.keys(lock.packages).map((path) => path.replace(/^.*node_modules\//, ''));
}

function tsconfig(options: Record<string, unknown>, file: string): string {
  return JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', types: ['node'], skipLibCheck: false, ...options }, files: [file] });
}

describe('packages, packed and installed with npm', () => {
  let service: string;

  beforeAll(async () => {
    for (const name of PACKAGES) {
      await run('pnpm', ['pack', '--pack-destination', tarballs], { cwd: join(REPO_ROOT, 'packages', name), env, timeout: STEP_MS });
    }
    service = await scratchProject('service', ['shared', 'producer'], { '@types/node': '22.19.1' });
    mkdirSync(join(service, 'src'));
    writeFileSync(join(service, 'src/service.ts'), SERVICE);
    writeFileSync(join(service, 'src/misspelt.ts'), MISSPELT);
    writeFileSync(join(service, 'src/no-sdk.js'), NO_SDK);
    writeFileSync(join(service, 'tsconfig.loose.json'), tsconfig({ strict: false, rootDir: 'src', outDir: 'dist' }, 'src/service.ts'));
    writeFileSync(join(service, 'tsconfig.strict.json'), tsconfig({ strict: true, exactOptionalPropertyTypes: true, noUncheckedIndexedAccess: true, noEmit: true }, 'src/service.ts'));
    writeFileSync(join(service, 'tsconfig.misspelt.json'), tsconfig({ strict: true, noEmit: true }, 'src/misspelt.ts'));
  }, SETUP_MS);
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('each tarball holds built JavaScript with declarations, README and LICENSE, and no sources or tsconfigs', async () => {
    for (const name of PACKAGES) {
      const { stdout } = await run('tar', ['tzf', join(tarballs, `zimage-${name}-0.1.0.tgz`)], { env });
      const files = stdout.split('\n').filter(Boolean);
      // Every file an export or the bin names is in the tarball.
      const manifest = JSON.parse((await run('tar', ['xzOf', join(tarballs, `zimage-${name}-0.1.0.tgz`), 'package/package.json'], { env })).stdout) as { exports: Record<string, string | Record<string, string>>; bin?: Record<string, string> };
      const targets = Object.values(manifest.exports).flatMap((target) => (typeof target === 'string' ? [target] : Object.entries(target).filter(([condition]) => condition !== 'zimage-source').map(([, path]) => path)));
      for (const path of [...targets, ...Object.values(manifest.bin ?? {})]) expect(files, `${name}: ${path}`).toContain(join('package', path));
      if (name !== 'cli') expect(files, name).toContain('package/dist/index.d.ts');
      expect(files, name).toContain('package/README.md');
      expect(files, name).toContain('package/LICENSE');
      expect(files.filter((f) => f.startsWith('package/src/') || /tsconfig/.test(f) || /\.test\./.test(f)), name).toEqual([]);
    }
  });

  it('enqueuing from a service installs neither the HTTP API nor the AWS SDK (size reported)', () => {
    const modules = join(service, 'node_modules');
    for (const heavy of ['fastify', '@bull-board', 'prom-client', '@aws-sdk', 'tsx', 'typescript']) expect(existsSync(join(modules, heavy)), heavy).toBe(false);
    const total = treeBytes(modules);
    const types = treeBytes(join(modules, '@types'));
    console.info(`enqueue path installs ${((total - types) / 1e6).toFixed(1)} MB (+ ${(types / 1e6).toFixed(1)} MB of the service's own @types)`);
  });

  it('a service compiles against the declarations under strict: false and under strict + exactOptionalPropertyTypes', async () => {
    const loose = await tsc(service, 'tsconfig.loose.json');
    expect(loose.output).toBe('');
    expect(loose.code).toBe(0);
    const strict = await tsc(service, 'tsconfig.strict.json');
    expect(strict.output).toBe('');
    expect(strict.code).toBe(0);
  }, STEP_MS);

  it('a misspelt request field does not compile', async () => {
    const misspelt = await tsc(service, 'tsconfig.misspelt.json');
    expect(misspelt.code).not.toBe(0);
    expect(misspelt.output).toMatch(/misspelt\.ts\(3,\d+\): error TS\d+: .*'promt'/);
  }, STEP_MS);

  it('the compiled service enqueues, waits for and reads a job through a real Redis, worker and emulator', async () => {
    if (!existsSync(join(service, 'dist/service.js'))) await tsc(service, 'tsconfig.loose.json');
    await using stack = await startStack();
    const child = spawn(process.execPath, ['dist/service.js'], { cwd: service, env: { ...env, REDIS_URL: stack.redisUrl, ZIMAGE_PREFIX: stack.prefix }, stdio: ['ignore', 'pipe', 'pipe'] });
    const result = await collect(child, STEP_MS);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const answer = JSON.parse(result.stdout) as { jobId: string; state: string; key: string; read: string };
    expect(answer).toMatchObject({ state: 'completed', read: 'completed' });
    expect(existsSync(join(stack.outputDir, answer.key))).toBe(true);
  }, STEP_MS);

  it('s3:// storage without the optional AWS SDK fails in our words, naming the packages to install', async () => {
    const { stdout } = await run(process.execPath, ['src/no-sdk.js'], { cwd: service, env, timeout: STEP_MS });
    expect(stdout).toMatch(/^CONFIG_INVALID: .*@aws-sdk\/client-s3/);
  }, STEP_MS);

  it('the packed CLI runs `zimage demo` from its built JavaScript, with nothing configured but Redis', async () => {
    const cli = await scratchProject('cli', [...PACKAGES]);
    const child = spawn(join(cli, 'node_modules/.bin/zimage'), ['demo'], {
      cwd: cli,
      env: { ...env, REDIS_URL: inject('redisUrl'), ZIMAGE_PREFIX: `pack${process.pid}`, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const result = await collect(child, STEP_MS);
    expect(result.stderr).not.toMatch(/tsx|ERR_|Error:/);
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/24 succeeded, 0 failed/);
    // The emulator's images are labelled for what they are.
    expect(result.stderr).toMatch(/Images \(emulator stand-ins\): /);
    const images = readdirSync(join(cli, 'output/catalogue'), { recursive: true }).filter((f) => String(f).endsWith('.png'));
    expect(images).toHaveLength(24);
    const manifest = readdirSync(join(cli, 'output')).find((f) => f.endsWith('.results.jsonl'));
    expect(manifest && readFileSync(join(cli, 'output', manifest), 'utf8').trim().split('\n')).toHaveLength(24);
  }, SETUP_MS);

  describe('the typed HTTP client, installed on its own', () => {
    let project: string;

    beforeAll(async () => {
      project = await scratchProject('client-service', ['client'], { '@types/node': '22.19.1' });
      mkdirSync(join(project, 'src'));
      writeFileSync(join(project, 'src/service.ts'), CLIENT_SERVICE);
      writeFileSync(join(project, 'src/misspelt.ts'), CLIENT_MISSPELT);
      writeFileSync(join(project, 'tsconfig.loose.json'), tsconfig({ strict: false, rootDir: 'src', outDir: 'dist' }, 'src/service.ts'));
      writeFileSync(join(project, 'tsconfig.strict.json'), tsconfig({ strict: true, exactOptionalPropertyTypes: true, noUncheckedIndexedAccess: true, noEmit: true }, 'src/service.ts'));
      writeFileSync(join(project, 'tsconfig.misspelt.json'), tsconfig({ strict: true, noEmit: true }, 'src/misspelt.ts'));
    }, SETUP_MS);

    it('installs openapi-fetch and no other zimage package, nor fastify, BullMQ or ioredis (size reported)', () => {
      const installed = installedPackages(project);
      expect(installed).toContain('openapi-fetch');
      expect(installed.filter((name) => name.startsWith('@zimage/'))).toEqual(['@zimage/client']);
      for (const heavy of ['fastify', 'bullmq', 'ioredis']) expect(installed, heavy).not.toContain(heavy);
      const modules = join(project, 'node_modules');
      const total = treeBytes(modules);
      const types = treeBytes(join(modules, '@types'));
      console.info(`HTTP client installs ${((total - types) / 1e6).toFixed(2)} MB (+ ${(types / 1e6).toFixed(1)} MB of the service's own @types)`);
    });

    it('a service compiles against its declarations under strict: false and under strict + exactOptionalPropertyTypes', async () => {
      const loose = await tsc(project, 'tsconfig.loose.json');
      expect(loose.output).toBe('');
      expect(loose.code).toBe(0);
      const strict = await tsc(project, 'tsconfig.strict.json');
      expect(strict.output).toBe('');
      expect(strict.code).toBe(0);
    }, STEP_MS);

    it('a misspelt request body field does not compile', async () => {
      const misspelt = await tsc(project, 'tsconfig.misspelt.json');
      expect(misspelt.code).not.toBe(0);
      expect(misspelt.output).toMatch(/misspelt\.ts\(3,\d+\): error TS\d+: .*'promt'/);
    }, STEP_MS);

    it('the compiled service enqueues, waits for and reads a job over HTTP from a real API (Redis, worker, emulator)', async () => {
      if (!existsSync(join(project, 'dist/service.js'))) await tsc(project, 'tsconfig.loose.json');
      await using api = await startApi();
      const child = spawn(process.execPath, ['dist/service.js'], { cwd: project, env: { ...env, ZIMAGE_URL: api.url, ZIMAGE_TOKEN: TOKEN }, stdio: ['ignore', 'pipe', 'pipe'] });
      const result = await collect(child, STEP_MS);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      const answer = JSON.parse(result.stdout) as { jobId: string; state: string; key: string; read: string; readKey: string };
      expect(answer).toMatchObject({ state: 'completed', key: 'bikes/B-1.png', read: 'completed', readKey: 'bikes/B-1.png' });
      // The job went through this API's queue, and its image is in this stack's storage.
      expect((await api.stack.producer.getJob(answer.jobId))?.state).toBe('completed');
      expect(existsSync(join(api.stack.outputDir, answer.key))).toBe(true);
    }, STEP_MS);
  });
});
