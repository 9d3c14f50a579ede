/**
 * The one place that reads configuration: every setting comes from its flag, else its environment
 * variable, else its default, and is checked by its zod schema. The result is a frozen Config;
 * nothing else reads process.env.
 */
import path from 'node:path';
import ms from 'ms';
import { z } from 'zod';
import { MAX_TIMER_S } from './timer-limit.js';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * A duration in seconds, bounded on both sides. Every duration ends up in a Node timer, which fires
 * at once for anything past MAX_TIMER_S, so none may exceed it; most have a tighter, useful bound.
 */
/**
 * A duration in seconds: a plain number is seconds (`5`, `0.5`), anything else goes to `ms`
 * (`500ms`, `5s`, `5m`, `1h`, `2 days`); undefined when it is neither.
 */
export function parseDurationSeconds(text: string | number): number | undefined {
  if (typeof text === 'number') return text;
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  const milliseconds = ms(trimmed as ms.StringValue);
  return typeof milliseconds === 'number' && Number.isFinite(milliseconds) ? milliseconds / 1000 : undefined;
}

const DURATION_EXAMPLES = '5, 90s, 5m, 1h';

const seconds = (min: number, max: number) =>
  z
    .union([z.number(), z.string()])
    .transform((value) => parseDurationSeconds(value) ?? Number.NaN)
    .pipe(z.number().min(min).max(max));
const HOUR_S = 3600;
const DAY_S = 86_400;
const integer = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const boolean = z
  .union([z.boolean(), z.enum(['1', '0', 'true', 'false', 'yes', 'no', 'on', 'off'])])
  .transform((value) => value === true || ['1', 'true', 'yes', 'on'].includes(String(value)));
const nonEmpty = z.string().trim().min(1);

const LOG_LEVELS = {
  debug: 'debug',
  info: 'info',
  warning: 'warn',
  warn: 'warn',
  error: 'error',
  trace: 'trace',
  fatal: 'fatal',
  silent: 'silent',
} as const;
type LogLevel = (typeof LOG_LEVELS)[keyof typeof LOG_LEVELS];

/** `N` for every module, `task=N` for one, or both: `120,ffmpeg_render=600`. */
const timeoutSpec = z.string().transform((text, context) => {
  const overrides: { all?: number; byTask: Record<string, number> } = { byTask: {} };
  for (const part of text
    .split(',')
    .map((piece) => piece.trim())
    .filter(Boolean)) {
    const [name, value] = part.includes('=') ? part.split('=', 2) : [undefined, part];
    const secondsValue = parseDurationSeconds(value ?? '') ?? Number.NaN;
    if (!Number.isFinite(secondsValue) || secondsValue <= 0 || secondsValue > MAX_TIMER_S) {
      context.addIssue({
        code: 'custom',
        message: `'${part}' is not N or task=N with N a duration > 0 and <= ${MAX_TIMER_S} s (${DURATION_EXAMPLES})`,
      });
      return z.NEVER;
    }
    if (name === undefined) overrides.all = secondsValue;
    else overrides.byTask[name.trim()] = secondsValue;
  }
  return overrides;
});

/** One setting: its flag, its environment variable, what it accepts, and the zod schema that parses it. */
export interface Setting<T = unknown> {
  env?: string;
  flag: string;
  accepts: string;
  schema: z.ZodType<T>;
  /** Documented default; applied by the schema or by `resolve`. */
  default?: string;
}

export const setting = <T>(definition: Setting<T>) => definition;

/**
 * A setting's value: its flag (which wins), else its environment variable (empty counts as unset),
 * else what its schema makes of nothing. A ConfigError names the flag or variable and what it accepts.
 */
export function parseSetting<T>(definition: Setting<T>, fromFlag: unknown, env: NodeJS.ProcessEnv): T {
  const fromEnv = definition.env !== undefined ? env[definition.env] : undefined;
  const raw = fromFlag ?? (fromEnv === '' ? undefined : fromEnv);
  const result = definition.schema.safeParse(raw);
  if (result.success) return result.data;
  const source = fromFlag !== undefined ? definition.flag : (definition.env ?? definition.flag);
  const detail = result.error.issues[0]?.code === 'custom' ? ` (${result.error.issues[0].message})` : '';
  throw new ConfigError(
    `${source}=${JSON.stringify(raw)} is invalid: expected ${definition.accepts}${detail}`,
  );
}

/** Every setting, by the key its flag value has in commander's options. */
export const SETTINGS = {
  serverDir: setting({
    env: 'CL_SERVER_DIR',
    flag: '--server-dir',
    accepts: 'a directory path',
    schema: nonEmpty.optional(),
  }),
  databaseUrl: setting({
    env: 'DATABASE_URL',
    flag: '--database-url',
    accepts: 'sqlite:////abs/path/media_store.db or a path',
    schema: nonEmpty.optional(),
    default: '{CL_SERVER_DIR}/media_store.db',
  }),
  storage: setting({
    env: 'WORKER_STORAGE_DIR',
    flag: '--storage',
    accepts: 'a directory path (the file storage root)',
    schema: nonEmpty.optional(),
    default: '{CL_SERVER_DIR}/compute',
  }),
  workerId: setting({
    env: 'WORKER_ID',
    flag: '--worker-id',
    accepts: 'letters, digits, ".", "_" or "-" (it is part of an MQTT topic)',
    schema: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,128}$/)
      .default('worker-default'),
    default: 'worker-default',
  }),
  tasks: setting({
    env: 'WORKER_SUPPORTED_TASKS',
    flag: '--tasks',
    accepts: 'a comma-separated list of module names',
    schema: z
      .string()
      .transform((text) =>
        text
          .split(',')
          .map((name) => name.trim())
          .filter(Boolean),
      )
      .optional(),
    default: 'every discovered module',
  }),
  modulesDir: setting({
    env: 'WORKER_MODULES_DIR',
    flag: '--modules-dir',
    accepts: 'a directory of compute modules',
    schema: nonEmpty.optional(),
    default: 'the built-in compute_modules/',
  }),
  pollInterval: setting({
    env: 'WORKER_POLL_INTERVAL',
    flag: '--poll-interval',
    accepts: `a duration from 0.001 to ${HOUR_S} s (5, 0.5, 90s, 5m, 1h)`,
    schema: seconds(0.001, HOUR_S).default(5),
    default: '5',
  }),
  concurrency: setting({
    env: 'WORKER_CONCURRENCY',
    flag: '--concurrency',
    accepts: 'an integer from 1 to 256',
    schema: integer(1, 256).default(1),
    default: '1',
  }),
  runnerReuse: setting({
    env: 'WORKER_RUNNER_REUSE',
    flag: '--runner-reuse',
    accepts: 'an integer >= 0 (jobs per runner process; 0 = no limit)',
    schema: integer(0).default(100),
    default: '100',
  }),
  httpPort: setting({
    env: 'WORKER_HTTP_PORT',
    flag: '--http-port',
    accepts: 'a TCP port for /healthz, /readyz and /metrics (0: any free port); off when unset',
    schema: integer(0, 65_535).optional(),
  }),
  httpHost: setting({
    env: 'WORKER_HTTP_HOST',
    flag: '--http-host',
    accepts: 'the address the HTTP endpoints listen on (they have no authentication)',
    schema: nonEmpty.default('127.0.0.1'),
    default: '127.0.0.1',
  }),
  dashboardPort: setting({
    env: 'DASHBOARD_PORT',
    flag: '--port',
    accepts: 'a TCP port for the dashboard (0: any free port)',
    schema: integer(0, 65_535).default(8080),
    default: '8080',
  }),
  dashboardHost: setting({
    env: 'DASHBOARD_HOST',
    flag: '--host',
    accepts: 'the address the dashboard listens on (any but loopback needs a token)',
    schema: nonEmpty.default('127.0.0.1'),
    default: '127.0.0.1',
  }),
  dashboardToken: setting({
    env: 'DASHBOARD_TOKEN',
    flag: '--token',
    accepts: 'a secret of 16 characters or more the dashboard asks for (prefer the env var)',
    schema: nonEmpty.optional(),
  }),
  runnerMaxMemory: setting({
    env: 'WORKER_RUNNER_MAX_MEMORY',
    flag: '--runner-max-memory',
    accepts: 'megabytes of JS heap per runner (integer >= 64)',
    schema: integer(64).optional(),
  }),
  maxInputPixels: setting({
    env: 'MAX_INPUT_PIXELS',
    flag: '--max-input-pixels',
    accepts: 'an integer >= 1 (largest input image, in pixels, a module will decode)',
    schema: integer(1).default(100_000_000),
    default: '100000000',
  }),
  timeout: setting({
    env: 'WORKER_TIMEOUT',
    flag: '--timeout',
    accepts: `N or task=N[,task=N] (seconds > 0, at most ${MAX_TIMER_S})`,
    schema: timeoutSpec.optional(),
    default: "each module's own",
  }),
  shutdownGrace: setting({
    env: 'WORKER_SHUTDOWN_GRACE',
    flag: '--shutdown-grace',
    accepts: `a duration from 0 to ${DAY_S} s (5, 90s, 5m, 1h)`,
    schema: seconds(0, DAY_S).default(30),
    default: '30',
  }),
  killGrace: setting({
    env: 'WORKER_KILL_GRACE',
    flag: '--kill-grace',
    accepts: `a duration from 0 to ${HOUR_S} s (5, 90s, 5m, 1h) between SIGTERM and SIGKILL`,
    schema: seconds(0, HOUR_S).default(5),
    default: '5',
  }),
  leaseTtl: setting({
    env: 'WORKER_LEASE_TTL',
    flag: '--lease-ttl',
    accepts: `a duration from 0.5 to ${DAY_S} s (5, 90s, 5m, 1h)`,
    schema: seconds(0.5, DAY_S).default(30),
    default: '30',
  }),
  dbBusyTimeout: setting({
    env: 'WORKER_DB_BUSY_TIMEOUT',
    flag: '--db-busy-timeout',
    accepts: `a duration from 0 to ${HOUR_S} s (5, 90s, 5m, 1h) (how long a write waits for another process's lock)`,
    schema: seconds(0, HOUR_S).default(15),
    default: '15',
  }),
  orphanAge: setting({
    env: 'WORKER_ORPHAN_AGE',
    flag: '--orphan-age',
    accepts: `a duration from 1 s to 1 year (5, 90s, 5m, 1h, 30d)`,
    schema: seconds(1, 365 * DAY_S).default(3600),
    default: '3600',
  }),
  retryBackoff: setting({
    env: 'WORKER_RETRY_BACKOFF',
    flag: '--retry-backoff',
    accepts: `a duration from 0 to ${DAY_S} s (5, 90s, 5m, 1h) (first retry delay)`,
    schema: seconds(0, DAY_S).default(5),
    default: '5',
  }),
  retryBackoffMax: setting({
    env: 'WORKER_RETRY_BACKOFF_MAX',
    flag: '--retry-backoff-max',
    accepts: `a duration from 0 to ${DAY_S} s (5, 90s, 5m, 1h)`,
    schema: seconds(0, DAY_S).default(300),
    default: '300',
  }),
  drain: setting({
    env: 'WORKER_DRAIN',
    flag: '--drain',
    accepts: 'true or false',
    schema: boolean.default(false),
    default: 'false',
  }),
  logLevel: setting({
    env: 'LOG_LEVEL',
    flag: '--log-level',
    accepts: 'DEBUG, INFO, WARNING or ERROR',
    schema: z
      .string()
      .transform((text) => text.toLowerCase())
      .pipe(z.enum(Object.keys(LOG_LEVELS) as [keyof typeof LOG_LEVELS]))
      .transform((level): LogLevel => LOG_LEVELS[level])
      .default('info'),
    default: 'INFO',
  }),
  broadcastType: setting({
    env: 'BROADCAST_TYPE',
    flag: '--broadcast-type',
    accepts: 'mqtt or noop',
    schema: z.enum(['mqtt', 'noop']).default('mqtt'),
    default: 'mqtt',
  }),
  mqttBroker: setting({
    env: 'MQTT_BROKER',
    flag: '--mqtt-broker',
    accepts: 'a host name or an mqtt:// / mqtts:// URL',
    schema: nonEmpty.default('localhost'),
    default: 'localhost',
  }),
  mqttPort: setting({
    env: 'MQTT_PORT',
    flag: '--mqtt-port',
    accepts: 'a port number from 1 to 65535',
    schema: integer(1, 65535).default(1883),
    default: '1883',
  }),
  mqttTopic: setting({
    env: 'MQTT_TOPIC',
    flag: '--mqtt-topic',
    accepts: 'an MQTT topic',
    schema: nonEmpty.default('inference/events'),
    default: 'inference/events',
  }),
  heartbeatInterval: setting({
    env: 'MQTT_HEARTBEAT_INTERVAL',
    flag: '--heartbeat-interval',
    accepts: `a duration from 1 to ${DAY_S} s (5, 90s, 5m, 1h)`,
    schema: seconds(1, DAY_S).default(30),
    default: '30',
  }),
  capabilityTopicPrefix: setting({
    env: 'CAPABILITY_TOPIC_PREFIX',
    flag: '--capability-topic-prefix',
    accepts: 'an MQTT topic prefix',
    schema: nonEmpty.default('inference/workers'),
    default: 'inference/workers',
  }),
  mqttUsername: setting({
    env: 'MQTT_USERNAME',
    flag: '--mqtt-username',
    accepts: 'a user name',
    schema: nonEmpty.optional(),
  }),
  mqttPassword: setting({
    env: 'MQTT_PASSWORD',
    flag: '--mqtt-password',
    accepts: 'a password (prefer the env var)',
    schema: z.string().optional(),
  }),
  mqttUseTls: setting({
    env: 'MQTT_USE_TLS',
    flag: '--mqtt-use-tls',
    accepts: 'true or false',
    schema: boolean.default(false),
    default: 'false (true for mqtts:// URLs)',
  }),
  mqttCaFile: setting({
    env: 'MQTT_CA_FILE',
    flag: '--mqtt-ca-file',
    accepts: 'a PEM file path',
    schema: nonEmpty.optional(),
  }),
  mqttCertFile: setting({
    env: 'MQTT_CERT_FILE',
    flag: '--mqtt-cert-file',
    accepts: 'a PEM file path',
    schema: nonEmpty.optional(),
  }),
  mqttKeyFile: setting({
    env: 'MQTT_KEY_FILE',
    flag: '--mqtt-key-file',
    accepts: 'a PEM file path',
    schema: nonEmpty.optional(),
  }),
  mqttTlsInsecure: setting({
    env: 'MQTT_TLS_INSECURE',
    flag: '--mqtt-tls-insecure',
    accepts: 'true or false (skip certificate checks)',
    schema: boolean.default(false),
    default: 'false',
  }),
  mqttProtocolVersion: setting({
    env: 'MQTT_PROTOCOL_VERSION',
    flag: '--mqtt-protocol-version',
    accepts: '5 or 4 (3.1.1)',
    schema: z.coerce
      .number()
      .pipe(z.union([z.literal(5), z.literal(4)]))
      .default(5),
    default: '5, falling back to 4 when the broker refuses it',
  }),
  mqttEventsPerJob: setting({
    env: 'MQTT_EVENTS_PER_JOB',
    flag: '--mqtt-events-per-job',
    accepts: 'true or false (also publish on {MQTT_TOPIC}/{job_id})',
    schema: boolean.default(false),
    default: 'false',
  }),
} as const;

type Settings = typeof SETTINGS;
export type SettingKey = keyof Settings;
type Parsed = { [K in SettingKey]: z.output<Settings[K]['schema']> };

export type Config = Readonly<
  Omit<Parsed, 'serverDir' | 'databaseUrl' | 'storage' | 'modulesDir'> & {
    /** Undefined when neither DATABASE_URL nor CL_SERVER_DIR is set; commands that need it say so. */
    databaseUrl: string | undefined;
    storageRoot: string | undefined;
    modulesDir: string;
  }
>;

export type Flags = Partial<Record<SettingKey, unknown>>;

/** Parses flags (winning) and environment variables; throws ConfigError naming the bad one. */
export function loadConfig(flags: Flags, env: NodeJS.ProcessEnv, defaultModulesDir: string): Config {
  const parsed: Record<string, unknown> = {};
  for (const [key, definition] of Object.entries(SETTINGS) as [SettingKey, Setting<unknown>][]) {
    parsed[key] = parseSetting(definition, flags[key], env);
  }
  const settings = parsed as Parsed;
  const { serverDir, databaseUrl, storage, modulesDir, ...rest } = settings;
  const storageDir = storage ?? (serverDir ? path.join(serverDir, 'compute') : undefined);
  return Object.freeze({
    ...rest,
    databaseUrl: databaseUrl ?? (serverDir ? path.join(serverDir, 'media_store.db') : undefined),
    storageRoot: storageDir ? path.resolve(storageDir) : undefined,
    modulesDir: path.resolve(modulesDir ?? defaultModulesDir),
  });
}

/** The database and storage root, or a ConfigError saying how to set them. */
export function requireStorePaths(config: Config): { databaseUrl: string; storageRoot: string } {
  if (!config.databaseUrl) {
    throw new ConfigError('no database: set CL_SERVER_DIR (or DATABASE_URL, or --database-url)');
  }
  if (!config.storageRoot) {
    throw new ConfigError('no storage root: set CL_SERVER_DIR (or WORKER_STORAGE_DIR, or --storage)');
  }
  return { databaseUrl: config.databaseUrl, storageRoot: config.storageRoot };
}
