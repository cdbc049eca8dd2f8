/**
 * `pnpm bench`: coming with the quota governor (issue #3), which defines the scenarios (quota
 * efficiency against p-limit and BullMQ-limiter baselines, pipeline overhead, ingest, interactive
 * latency under backlog). Until then it says so and exits 0, rather than printing made-up numbers.
 */
process.stdout.write('pnpm bench: coming with the quota governor (issue #3); no scenarios yet.\n');
