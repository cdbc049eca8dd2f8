/**
 * `@zimage/api`: the HTTP API, a package of its own so that services and processes which only
 * enqueue (workers running schedules, a Node service using @zimage/producer) neither install nor
 * load fastify, Bull Board, prom-client or the AWS SDK.
 */
export { createApi, type ApiOptions } from './create-api.js';
export { openApiDocument } from './openapi.js';
export { registeredRoutes, type RegisteredRoute } from './route-registry.js';
export * as apiSchemas from './api-schemas.js';
