/**
 * The HTTP API (`zimage api`): fastify, with request schemas from `@zimage/shared` (the same zod
 * schemas as the library and the CLI), bearer-token auth, all-or-nothing batches, idempotent POSTs.
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import { AppError, WEBHOOK_QUEUE, type Logger, type Storage } from '@zimage/shared';
import { Queue } from 'bullmq';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { Producer } from '@zimage/producer';
import { errorHandler, sendError } from './api-error.js';
import { bindTenant, forbidden, tenantMayCall } from './tenant-scope.js';
import { createTokenCheck, createTokenResolver } from './bearer-auth.js';
import { createIdempotency, type IdempotencyOptions } from './idempotency.js';
import { batchRoutes } from './routes-batches.js';
import { budgetRoutes } from './routes-budgets.js';
import { createMetrics } from './metrics.js';
import { openApiDocument } from './openapi.js';
import { createSchedules } from '@zimage/producer';
import { galleryRoutes } from './routes-gallery.js';
import { batchIndexRoutes } from './routes-batch-index.js';
import { quotaPageRoutes } from './routes-quota-page.js';
import { scheduleRoutes } from './routes-schedules.js';
import { jobRoutes } from './routes-jobs.js';
import { answerClientError } from './client-error.js';
import { recordRoutes } from './route-registry.js';

export interface ApiOptions {
  producer: Producer;
  /** A connection for the API's own keys (idempotency). */
  redis: Redis;
  storage: Storage;
  prefix: string;
  tokens: readonly string[];
  /** Tenants' tokens (ZIMAGE_API_TENANT_TOKENS): token → tenant; see tenant-scope.ts. */
  tenantTokens?: ReadonlyMap<string, string>;
  logger: Logger;
  /** Largest request body (batches). @defaultValue 64 MiB */
  maxBodyBytes?: number;
  /** Idempotency-Key handling (the "in progress" marker's lifetime). */
  idempotency?: IdempotencyOptions;
  /**
   * Who may read /metrics (spend, account ids, queue sizes): any API token, `token`
   * (ZIMAGE_METRICS_TOKEN) for a scraper, or anyone when `public` (ZIMAGE_METRICS_PUBLIC).
   */
  metrics?: { token?: string | undefined; public?: boolean | undefined };
  /** ZIMAGE_SCHEDULE_FILES_DIR: unset, a schedule's `csv` is refused. */
  scheduleFilesDir?: string | undefined;
}

/** Paths anyone may call: probes and the API description (its page and the page's assets). */
const PUBLIC = new Set(['/healthz', '/readyz', '/openapi.json', '/docs']);
const isPublic = (path: string) => PUBLIC.has(path) || path.startsWith('/docs/');

export async function createApi(options: ApiOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    // Query strings like ?a[b]=1 are not objects here: every option is a plain string.
    routerOptions: { maxParamLength: 200 },
    bodyLimit: 64 * 1024,
    // Errors fastify meets before routing (a malformed URL, an over-long parameter) in our shape too.
    frameworkErrors: (error, request, reply) => errorHandler(options.logger)(error, request, reply),
    // ... and those node's HTTP parser meets before fastify (headers over 16 KiB).
    clientErrorHandler: answerClientError,
  });
  recordRoutes(app);
  const isAuthorised = createTokenCheck(options.tokens);
  const tenantTokens = [...(options.tenantTokens ?? new Map<string, string>())];
  for (const [token, tenant] of tenantTokens) {
    if (options.tokens.includes(token)) throw new AppError('CONFIG_INVALID', `ZIMAGE_API_TENANT_TOKENS: the token of tenant ${tenant} is also an operator token (ZIMAGE_API_TOKENS)`);
  }
  const tenantOfToken = createTokenResolver(tenantTokens);
  const isScraper = createTokenCheck(options.metrics?.token ? [options.metrics.token] : []);
  const idempotency = createIdempotency(options.redis, options.prefix, options.idempotency);

  app.setErrorHandler(errorHandler(options.logger));
  app.setNotFoundHandler((request, reply) => sendError(reply, new AppError('ROUTE_NOT_FOUND', `no endpoint ${request.method} ${request.url.split('?')[0]}`)));
  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    if (isPublic(path)) return;
    if (path === '/metrics' && (options.metrics?.public === true || isScraper(request.headers.authorization))) return;
    if (isAuthorised(request.headers.authorization)) return;
    const tenant = tenantOfToken(request.headers.authorization);
    if (tenant !== undefined) {
      if (!tenantMayCall(request.method, request.routeOptions.url)) return sendError(reply, forbidden(tenant));
      bindTenant(request, tenant);
      return;
    }
    // Browsers (gallery, Bull Board) get a Basic challenge: the token is the password.
    const html = path === '/batches' || path === '/quota' || path.startsWith('/batches/') || path.startsWith('/admin/');
    reply.header('www-authenticate', html ? 'Basic realm="zimage", charset="UTF-8"' : 'Bearer realm="zimage"');
    return sendError(reply, new AppError('UNAUTHORIZED', 'a valid bearer token is required (Authorization: Bearer <token>)'));
  });

  app.get('/healthz', async () => ({ ok: true }));
  app.get('/readyz', async (_request, reply) => {
    const checks = await Promise.allSettled([options.redis.ping(), options.storage.check()]);
    const [redis, storage] = checks.map((c) => (c.status === 'fulfilled' ? 'ok' : 'unavailable'));
    const ready = redis === 'ok' && storage === 'ok';
    // A paused fleet does not make the API unready (it still accepts jobs, which wait), but the
    // operator looking here must see that nothing is being generated, and why.
    const pause = redis === 'ok' ? await options.producer.pauseState().catch(() => undefined) : undefined;
    const fleet = pause === undefined ? undefined : { paused: pause.paused, ...(pause.reason ? { reason: pause.reason } : {}), parkedJobs: pause.parkedJobs };
    return reply.code(ready ? 200 : 503).send({ ready, redis, storage, ...(fleet ? { fleet } : {}) });
  });

  const metrics = createMetrics(options.redis, options.prefix);
  app.get('/metrics', async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
  const document = openApiDocument();
  app.get('/openapi.json', async () => document);
  // The reference page: Swagger UI with its assets served from the package (nothing from a CDN).
  await app.register(swagger, { mode: 'static', specification: { document: document as never } });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true, uiConfig: { url: '/openapi.json', persistAuthorization: false } });

  // Bull Board: the operator's view of both queues (retry, inspect, clean).
  const webhookQueue = new Queue(WEBHOOK_QUEUE, { connection: options.redis, prefix: options.prefix });
  webhookQueue.on('error', () => {}); // connection errors surface as failed requests (503)
  const board = new FastifyAdapter();
  board.setBasePath('/admin/queues');
  createBullBoard({ queues: [new BullMQAdapter(options.producer.queue), new BullMQAdapter(webhookQueue)], serverAdapter: board });
  await app.register(board.registerPlugin(), { prefix: '/admin/queues' });
  app.addHook('onClose', async () => {
    await metrics.close();
    await webhookQueue.close();
  });

  jobRoutes(app, options.producer, idempotency);
  batchRoutes(app, options.producer, idempotency, options.maxBodyBytes ?? 64 * 1024 * 1024);
  budgetRoutes(app, options.producer);
  galleryRoutes(app, options.producer, options.redis, options.storage, options.prefix);
  batchIndexRoutes(app, options.producer);
  quotaPageRoutes(app, options.producer);
  const schedules = createSchedules(options.redis, options.prefix, { filesDir: options.scheduleFilesDir, producer: options.producer });
  scheduleRoutes(app, schedules);
  app.addHook('onClose', () => schedules.close());
  return app;
}
