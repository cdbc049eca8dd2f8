/**
 * The pino root logger. Applications (the CLI entry points) create it once and pass children
 * down; library code never logs on its own.
 *
 * Secrets: the API key travels only in the `authorization` header of upstream requests. Anything
 * that looks like it is redacted wherever it appears in a log object, and the key's literal value
 * is scrubbed from messages too, in case an error from a dependency quotes it.
 */
import { createRequire } from 'node:module';
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'apiKey',
  '*.apiKey',
  '*.*.apiKey',
  'authorization',
  '*.authorization',
  '*.*.authorization',
  '*.*.*.authorization',
  'headers.authorization',
  'headers["x-dashscope-apikey"]',
  '*.headers["x-dashscope-apikey"]',
  'config.dashscopeApiKey',
  'dashscopeApiKey',
  '*.dashscopeApiKey',
  'secretAccessKey',
  '*.secretAccessKey',
  'DASHSCOPE_API_KEY',
  '*.DASHSCOPE_API_KEY',
  'AWS_SECRET_ACCESS_KEY',
  '*.AWS_SECRET_ACCESS_KEY',
];

export interface CreateLoggerOptions {
  level?: string;
  name?: string;
  /** Literal secret values to scrub from every log line (the API key, AWS secret, ...). */
  secrets?: readonly (string | undefined)[];
  /** Pretty output; defaults to true when stdout is a terminal. */
  pretty?: boolean;
  /** Write somewhere else than stdout (tests). */
  destination?: pino.DestinationStream;
}

export function createLogger(options: CreateLoggerOptions = {}): Logger {
  const secrets = (options.secrets ?? []).filter((s): s is string => typeof s === 'string' && s.length >= 6);
  const pretty = options.pretty ?? (process.stdout.isTTY === true && !options.destination);
  const config: LoggerOptions = {
    level: options.level ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  if (secrets.length > 0) {
    // Last line of defence: scrub literal secret values from the serialised line.
    config.hooks = { streamWrite: (line: string) => scrubSecrets(line, secrets) };
  }
  if (options.name) config.name = options.name;
  if (options.destination) return pino(config, options.destination);
  if (pretty && prettyPrinterInstalled()) {
    return pino({
      ...config,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } },
    });
  }
  return pino(config);
}

/**
 * pino-pretty is an optional peer: the CLI installs it, a service that only enqueues does not
 * need it (its logs are JSON). Without it a terminal gets JSON lines too, rather than a crash.
 */
function prettyPrinterInstalled(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}

export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (out.includes(secret)) out = out.split(secret).join('[redacted]');
  }
  return out;
}
