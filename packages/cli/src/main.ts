#!/usr/bin/env node
/**
 * `zimage`: one command line for the whole system. Each subcommand parses its own configuration
 * from the environment (once, at this edge) and reports errors with stable codes.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { apiCommand } from './commands/api.js';
import { budgetsListCommand, budgetsRemoveCommand, budgetsSetCommand, budgetsUsageCommand, quotaCommand } from './commands/budgets.js';
import { batchCommand } from './commands/batch.js';
import { batchesCommand } from './commands/batches.js';
import { cancelCommand } from './commands/cancel.js';
import { demoCommand } from './commands/demo.js';
import { emulatorCommand } from './commands/emulator.js';
import { enqueueCommand } from './commands/enqueue.js';
import { healthCommand } from './commands/health.js';
import { jobsParkedCommand } from './commands/jobs.js';
import { jobsRetryAnyCommand } from './commands/jobs-retry.js';
import { jobsCancelCommand } from './commands/jobs-cancel.js';
import { resultsCommand } from './commands/results.js';
import { resumeCommand } from './commands/resume.js';
import { scheduleApplyCommand, scheduleListCommand, scheduleRemoveCommand } from './commands/schedule.js';
import { statusCommand } from './commands/status.js';
import {
  webhooksEnableCommand,
  webhooksListCommand,
  webhooksLogCommand,
  webhooksReplayCommand,
  webhooksSecretCommand,
} from './commands/webhooks.js';
import { workerCommand } from './commands/worker.js';
import { collect } from './parse-options.js';
import { loadEnvFile } from './env-file.js';
import { EXIT, reportError, runCommand, usageError } from './run-command.js';

const CLI_VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

// Commander's own errors (unknown option, missing argument) get the catalogue's shape too; the
// settings are inherited by every subcommand defined below.
const program = new Command('zimage')
  .description('Bulk and scheduled image generation with DashScope z-image-turbo, on BullMQ')
  .version(CLI_VERSION)
  .option('--env-file <path>', 'read variables from a .env file first (variables already set win)')
  .exitOverride()
  .configureOutput({ outputError: (text, write) => write(usageError(text)) });

program
  .command('demo')
  .description('run the whole pipeline on examples/catalogue.csv, with nothing configured')
  .option('--file <path>', 'another CSV or JSONL file')
  .option('--json', 'print a JSON summary at the end')
  .action(runCommand(demoCommand));

program
  .command('api')
  .description('serve the HTTP API (needs ZIMAGE_API_TOKENS) until SIGINT/SIGTERM')
  .option('--port <n>', 'port (default PORT or 8080)')
  .option('--host <host>', 'interface (default ZIMAGE_API_HOST or 0.0.0.0)')
  .option('--json', 'log JSON lines, also on a terminal')
  .action(runCommand(apiCommand));

program.command('worker').description('process generation jobs until SIGINT/SIGTERM').option('--json', 'log JSON lines, also on a terminal').action(runCommand(workerCommand));

program
  .command('enqueue')
  .description('enqueue one image job and print its id')
  .requiredOption('--prompt <text>', 'what to draw (1–800 characters)')
  .option('--size <WxH>', 'e.g. 1024*1536 (total pixels between 512² and 2048²)')
  .addOption(new Option('--aspect <ratio>', 'recommended size by aspect ratio').choices(['1:1', '2:3', '3:2', '3:4', '4:3', '9:16', '16:9']))
  .addOption(new Option('--tier <tier>', 'size tier for --aspect').choices(['1024', '1280', '1536']))
  .option('--seed <n>', 'integer 0–2147483647')
  .option('--prompt-extend', 'let the model rewrite the prompt (costs twice as much)')
  .option('--cache', 'reuse an image already stored for the same request (needs a seed; not with --prompt-extend)')
  .option('--cache-namespace <name>', 'render cache namespace (default: default)')
  .option('--cache-ttl <duration>', 'how long the image is offered for reuse, e.g. 30d (default 30d)')
  .option('--cache-refresh', 'generate even on a cache hit, and offer the new image from then on')
  .option('--key <template>', 'object key or template, e.g. catalogue/{sku}.png')
  .option('--metadata <k=v>', 'metadata entry (repeatable)', collect, [])
  .option('--priority <0-100>', 'higher runs sooner')
  .option('--tenant <id>', 'who the job is for: fair share and tenant budgets count it')
  .option('--deadline <iso>', 'not started by then → expired, never billed')
  .option('--idempotency-key <key>', 'the same key returns the same job')
  .option('--webhook <url>', 'URL called back (Standard Webhooks, signed with ZIMAGE_WEBHOOK_SECRET) when the job ends')
  .option('--webhook-events <list>', 'comma-separated event types for --webhook (default: all)')
  .option('--json', 'print the result as JSON')
  .action(runCommand(enqueueCommand));

program
  .command('batch')
  .description('enqueue every row of a CSV or JSONL file (all rows are validated first)')
  .argument('<file>', 'CSV (with a header row) or JSONL')
  .option('--prompt-template <template>', 'prompt filled from columns, e.g. "Studio photo of {title} in {color}"')
  .option('--key <template>', 'object key filled from columns, e.g. "catalogue/{sku}.png"')
  .option('--size <WxH>', 'size for rows without a size column')
  .option('--prompt-extend', 'prompt_extend for rows without a prompt_extend column')
  .option('--cache', 'reuse an image already stored for the same request (rows need a seed column; not with --prompt-extend)')
  .option('--cache-namespace <name>', 'render cache namespace (default: default)')
  .option('--cache-ttl <duration>', 'how long the image is offered for reuse, e.g. 30d (default 30d)')
  .option('--cache-refresh', 'generate even on a cache hit, and offer the new image from then on')
  .option('--priority <0-100>', 'priority for rows without a priority column')
  .option('--tenant <id>', 'tenant for rows without a tenant column (fair share, tenant budgets)')
  .option('--row-key <column>', 'column that identifies a row in the manifest (default: the first)')
  .option('--metadata-columns <list>', 'comma-separated columns to keep as metadata (default: all)')
  .option('--skip-invalid', 'enqueue the valid rows and write the rejected ones to a file')
  .option('--rejected <path>', 'where --skip-invalid writes rejected rows (default FILE.rejected.jsonl)')
  .option('--watch', 'show progress until the batch ends, then write the results manifest')
  .option('--manifest <path>', 'results manifest path for --watch')
  .option('--webhook <url>', "URL called back with every job's event and batch.completed")
  .option('--webhook-events <list>', 'comma-separated event types for --webhook (default: all)')
  .option('--json', 'print the batch (and with --watch its outcome) as JSON')
  .action(runCommand(batchCommand));

program
  .command('status')
  .description("print a batch's counts (or a job's state)")
  .argument('<id>', 'batch id or job id')
  .option('--watch', 'follow it until it ends (warns while no worker is connected)')
  .option('--json', 'print JSON')
  .action(runCommand(statusCommand));

program
  .command('batches')
  .description('batches newest first, with state, counts and spend')
  .option('--state <state>', 'running, cancelling or completed')
  .option('--limit <n>', 'how many (1–500, default 50)')
  .option('--cursor <cursor>', 'the next page, as printed after the previous one')
  .option('--json', 'print JSON')
  .action(runCommand(batchesCommand));

program
  .command('cancel')
  .description('cancel a batch (every job not finished) or one job; a paid image is still stored')
  .argument('<id>', 'batch id or job id')
  .option('--json', 'print JSON')
  .action(runCommand(cancelCommand));

program
  .command('results')
  .description("print a batch's results manifest (NDJSON), or download its images and manifest into a folder (resumable)")
  .argument('<batchId>')
  .option('--download <dir>', 'write the images under their keys, and the manifest, into this folder; images already there are kept')
  .option('--json', 'with --download: print the report as JSON')
  .action(runCommand(resultsCommand));

program
  .command('health')
  .description('exit 0 when the worker or API writing ZIMAGE_HEALTH_FILE reaches Redis and storage (container HEALTHCHECK)')
  .option('--max-age <seconds>', 'oldest report that counts (default 30)')
  .option('--json', 'print JSON')
  .action(runCommand(healthCommand));

program.command('resume').description('resume a paused queue (an account-wide error, storage, an outage) once it is fixed').option('--json', 'print JSON').action(runCommand(resumeCommand));

const jobs = program.command('jobs').description('jobs by filter, and paid images parked for an operator');
jobs
  .command('cancel')
  .description("cancel a batch's, a pipeline's or a tenant's unfinished jobs by state and creation time (a paid image is still stored)")
  .option('--batch <id>', 'the jobs of this batch')
  .option('--pipeline <id>', 'the jobs of every batch this pipeline ticked')
  .option('--tenant <id>', "this tenant's jobs")
  .option('--state <state>', 'only jobs waiting, delayed or active')
  .option('--created-after <iso>', 'only jobs created at or after this time')
  .option('--created-before <iso>', 'only jobs created before this time')
  .option('--dry-run', 'count the matching jobs; change nothing')
  .option('--json', 'print JSON')
  .action(runCommand(jobsCancelCommand));
jobs.command('parked').description('paid images held because storage can never accept their key, with what to do').option('--json', 'print JSON').action(runCommand(jobsParkedCommand));
jobs
  .command('retry')
  .description("JOB_ID: store a parked paid image again now, under a new key if given (no new generation); --batch: retry a batch's failed jobs by error code and creation time, with their checkpoints")
  .argument('[jobId]', 'a parked job (zimage jobs parked)')
  .option('--key <key>', 'JOB_ID: the object key to store it at instead')
  .option('--batch <id>', "retry this batch's failed jobs (not cancelled or expired ones)")
  .option('--pipeline <id>', "retry the failed jobs of every batch this pipeline ticked")
  .option('--tenant <id>', "retry this tenant's failed jobs")
  .option('--code <code>', '--batch/--pipeline/--tenant: only jobs that failed with this error code, e.g. UPSTREAM_CONTENT_REJECTED')
  .option('--created-after <iso>', '--batch/--pipeline/--tenant: only jobs created at or after this time')
  .option('--created-before <iso>', '--batch/--pipeline/--tenant: only jobs created before this time')
  .option('--dry-run', '--batch/--pipeline/--tenant: count the matching jobs (by code); change nothing')
  .option('--json', 'print JSON')
  .action(runCommand(jobsRetryAnyCommand));


const budgets = program.command('budgets').description('hard and soft US$ budgets with their usage (docs/spend-control.md)');
budgets.command('list').description('every budget with its usage in the current period and the jobs parked on it').option('--json', 'print JSON').action(runCommand(budgetsListCommand));
budgets
  .command('set')
  .description('create or replace a budget (its usage is kept); wakes the jobs parked on it')
  .argument('<id>', 'budget id: [A-Za-z0-9_-]{1,64}')
  .requiredOption('--scope <scope>', 'account, batch, pipeline or tenant')
  .requiredOption('--subject <id>', 'the account (or * for every account together), batch, pipeline or tenant')
  .requiredOption('--limit <usd>', 'the limit in US$, e.g. 25')
  .addOption(new Option('--kind <kind>', 'hard parks the jobs it covers; soft only warns (default hard)').choices(['hard', 'soft']))
  .addOption(new Option('--period <period>', 'UTC period (default none: in all)').choices(['day', 'week', 'month', 'none']))
  .option('--json', 'print JSON')
  .action(runCommand(budgetsSetCommand));
budgets.command('usage').description("one budget's usage: spent, maybe billed, in flight, left, parked jobs").argument('<id>').option('--json', 'print JSON').action(runCommand(budgetsUsageCommand));
budgets.command('remove').description('remove a budget; wakes the jobs parked on it').argument('<id>').option('--json', 'print JSON').action(runCommand(budgetsRemoveCommand));

program
  .command('quota')
  .description("per account the governor's pace, ceiling and throttles; each tenant's share under fair share; budgets")
  .option('--json', 'print JSON')
  .action(runCommand(quotaCommand));

const schedule = program.command('schedule').description('scheduled pipelines (cron or interval → a batch per tick)');
schedule
  .command('apply')
  .description('make the schedules match a pipelines file (YAML or JSON): each pipeline validated as its tick would be, then created or updated; unchanged ones are left alone')
  .argument('<file>', 'pipelines.yaml or .json')
  .option('--dry-run', 'print the plan (create / update / unchanged / remove) and change nothing')
  .option('--prune', 'remove file-managed pipelines that are no longer in the file (without it they are kept, and listed)')
  .option('--json', 'print JSON')
  .action(runCommand(scheduleApplyCommand));
schedule.command('list').description('every schedule with its next run').option('--json', 'print JSON').action(runCommand(scheduleListCommand));
schedule.command('remove').description('remove a schedule').argument('<id>').option('--json', 'print JSON').action(runCommand(scheduleRemoveCommand));

const webhooks = program.command('webhooks').description('webhook deliveries: log, replay, endpoints');
webhooks
  .command('log')
  .description('every delivery attempt of an event (time, endpoint, status, latency, error)')
  .argument('<eventId>', 'evt_… (the webhook-id header)')
  .option('--json', 'print JSON')
  .action(runCommand(webhooksLogCommand));
webhooks
  .command('replay')
  .description("send an event's dead-lettered deliveries again, or an endpoint's since a time")
  .argument('[eventId]', 'evt_…')
  .option('--endpoint <id>', 'only this endpoint (with --since: every dead letter of this endpoint)')
  .option('--since <iso>', 'with --endpoint: events at or after this time')
  .option('--force', 'also send deliveries that succeeded')
  .option('--json', 'print JSON')
  .action(runCommand(webhooksReplayCommand));
webhooks.command('list').description('registered endpoints, their state and dead letters').option('--json', 'print JSON').action(runCommand(webhooksListCommand));
webhooks.command('enable').description('re-enable an endpoint disabled by a 410').argument('<endpointId>').option('--json', 'print JSON').action(runCommand(webhooksEnableCommand));
webhooks.command('secret').description('print a new whsec_ signing secret').option('--json', 'print JSON').action(runCommand(webhooksSecretCommand));

program
  .command('emulator')
  .description('run the local DashScope emulator')
  .option('--port <n>', 'port (0 picks a free one)', '8089')
  .option('--host <host>', 'interface to listen on', '127.0.0.1')
  .option('--rpm <n>', 'requests a minute before Throttling.RateQuota (default 120)')
  .option('--rps <n>', 'requests a second before Throttling.RateQuota (default 2)')
  .option('--latency <min-max>', 'response latency range in ms (default 1500-4000)')
  .option('--no-burst-guard', 'turn off the Throttling.BurstRate ramp guard')
  .option('--retry-after <seconds>', 'send Retry-After on 429s')
  .option('--region <region>', 'singapore or beijing (prices in stats)')
  .option('--limiter <model>', 'per-second (default), fixed-window, sliding-log, token-bucket, concurrency or drift')
  .option('--window-ms <n>', 'fixed-window / sliding-log window in ms (default 60000)')
  .option('--bucket-size <n>', 'token-bucket capacity (default 10)')
  .option('--max-in-flight <n>', 'concurrency: most requests accepted and not yet answered (default 4)')
  .option('--drift <schedule>', 'drift: atMs:rpm steps from the first request, e.g. "0:600,60000:360,120000:600"')
  .option('--json', 'print where it listens as JSON')
  .action(runCommand(emulatorCommand));

// --env-file is read before any command parses its environment.
program.hook('preAction', () => {
  const file = program.opts<{ envFile?: string }>().envFile;
  if (file === undefined) return;
  try {
    loadEnvFile(file);
  } catch (error) {
    // Printed here in the catalogue's shape; the CommanderError only stops the command.
    throw new CommanderError(reportError(error), 'zimage.envFile', '');
  }
});

try {
  await program.parseAsync(process.argv);
} catch (error) {
  // exitOverride: --help and --version end here with exit code 0; usage errors were printed.
  if (!(error instanceof CommanderError)) throw error;
  process.exitCode = error.code === 'zimage.envFile' ? error.exitCode : error.exitCode === 0 ? EXIT.ok : EXIT.badInput;
}
