/**
 * The Docker files' safety rules, checked on the files themselves (these machines have no Docker
 * engine): nothing published beyond loopback unless asked, no default credentials, pinned images.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REPO_ROOT } from './support/run-cli.js';

interface Service {
  image?: string;
  build?: unknown;
  ports?: string[];
  environment?: Record<string, string>;
  command?: string[];
  entrypoint?: string[];
}

const read = (name: string) => readFileSync(`${REPO_ROOT}${name}`, 'utf8');
const compose = parse(read('docker-compose.yml')) as { services: Record<string, Service>; 'x-zimage-env': Record<string, string> };
const services = Object.entries(compose.services);
/** A release tag: a version number or a dated release, never `latest` or a bare major. */
const PINNED = /:(\d+\.\d+\.\d+[\w.-]*|RELEASE\.\d{4}-\d{2}-\d{2}T[\w-]+)$/;

describe('docker-compose.yml and the Dockerfile', () => {
  it('publish every port on 127.0.0.1 unless ZIMAGE_BIND says otherwise', () => {
    const ports = services.flatMap(([, service]) => service.ports ?? []);
    expect(ports.length).toBeGreaterThan(0);
    for (const port of ports) expect(port).toMatch(/^\$\{ZIMAGE_BIND:-127\.0\.0\.1\}:\d+:\d+$/);
  });

  it('give Redis and MinIO no default credentials: each is required from the environment', () => {
    const text = read('docker-compose.yml');
    expect(text).not.toMatch(/minioadmin/);
    expect(compose.services['redis']!.entrypoint!.join(' ')).toContain('--requirepass');
    expect(compose.services['redis']!.environment!['REDISCLI_AUTH']).toMatch(/^\$\{REDIS_PASSWORD:\?/);
    expect(compose['x-zimage-env']['REDIS_URL']).toMatch(/^redis:\/\/:\$\{REDIS_PASSWORD:\?[^}]*\}@redis:6379$/);
    for (const name of ['MINIO_ROOT_USER', 'MINIO_ROOT_PASSWORD']) expect(compose.services['minio']!.environment![name]).toMatch(new RegExp(`^\\$\\{${name}:\\?`));
    expect(compose['x-zimage-env']['AWS_SECRET_ACCESS_KEY']).toMatch(/^\$\{MINIO_ROOT_PASSWORD:\?/);
  });

  it('pin every image to a release tag (compose services and the Dockerfile base)', () => {
    const images = services.flatMap(([, service]) => (service.image ? [service.image] : []));
    expect(images.length).toBeGreaterThanOrEqual(3);
    for (const image of images) expect(image).toMatch(PINNED);
    const from = read('Dockerfile').split('\n').filter((line) => line.startsWith('FROM '));
    expect(from.length).toBeGreaterThan(0);
    for (const line of from) expect(line.slice(5).trim().split(' ')[0]).toMatch(/^node:\d+\.\d+\.\d+-/);
  });

  it('build a multi-stage image that runs built JavaScript without tsx, as a non-root user, with a data volume and a HEALTHCHECK', () => {
    const dockerfile = read('Dockerfile');
    const stages = dockerfile.split('\n').filter((line) => line.startsWith('FROM '));
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const line of stages) expect(line).toMatch(/^FROM node:22\.\d+\.\d+-/);
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    expect(runtime).toMatch(/^COPY --from=build /m);
    expect(runtime).toMatch(/^USER node$/m);
    expect(runtime).toMatch(/^VOLUME /m);
    expect(runtime).toMatch(/^HEALTHCHECK .*zimage\.js", "health"\]$/m);
    expect(runtime).toMatch(/^ENTRYPOINT \["node", "\/app\/bin\/zimage\.js"\]$/m);
    expect(runtime).not.toMatch(/tsx|zimage-source|pnpm install/);
    expect(dockerfile).toMatch(/deploy --prod/);
    // The emulator writes no health file: its service must not inherit a check it always fails.
    expect((compose.services['emulator'] as { healthcheck?: { disable?: boolean } }).healthcheck?.disable).toBe(true);
  });
});
