import { loadConfig, producerEnvSchema, type JobRequestInput } from '@zimage/shared';
import { parseEventTypes, parseInteger, parseMetadataPairs } from '../parse-options.js';
import { producerFromEnv } from '../producer-from-env.js';

export interface EnqueueFlags {
  prompt: string;
  size?: string;
  aspect?: string;
  tier?: string;
  seed?: string;
  promptExtend?: boolean;
  cache?: boolean;
  cacheNamespace?: string;
  cacheTtl?: string;
  cacheRefresh?: boolean;
  key?: string;
  metadata: string[];
  priority?: string;
  tenant?: string;
  deadline?: string;
  idempotencyKey?: string;
  webhook?: string;
  webhookEvents?: string;
  json?: boolean;
}

/** `zimage enqueue --prompt ...`: validates, enqueues one job, prints its id. */
export async function enqueueCommand(flags: EnqueueFlags): Promise<number> {
  const env = loadConfig(producerEnvSchema, process.env);
  const request: Record<string, unknown> = {
    prompt: flags.prompt,
    size: flags.size,
    aspect: flags.aspect,
    tier: flags.tier,
    seed: parseInteger('--seed', flags.seed),
    promptExtend: flags.promptExtend,
    cache: flags.cache,
    cacheNamespace: flags.cacheNamespace,
    cacheTtl: flags.cacheTtl,
    cacheRefresh: flags.cacheRefresh,
    key: flags.key,
    metadata: parseMetadataPairs(flags.metadata),
    priority: parseInteger('--priority', flags.priority),
    tenant: flags.tenant,
    deadline: flags.deadline,
    idempotencyKey: flags.idempotencyKey,
    webhook: flags.webhook ? { url: flags.webhook, ...(flags.webhookEvents ? { events: parseEventTypes(flags.webhookEvents) } : {}) } : undefined,
  };
  for (const [k, v] of Object.entries(request)) if (v === undefined) delete request[k];
  const producer = await producerFromEnv(env);
  try {
    const job = await producer.enqueue(request as JobRequestInput);
    process.stdout.write(flags.json ? `${JSON.stringify(job)}\n` : `${job.jobId}\n`);
    return 0;
  } finally {
    await producer.close();
  }
}
