/**
 * `@zimage/producer/api`: the HTTP API, a separate entry point so that processes which only
 * enqueue (workers running schedules, the CLI) do not load fastify, Bull Board and prom-client.
 */
export { createApi, type ApiOptions } from './create-api.js';
