/**
 * The one place that reads configuration: every setting comes from its flag, else its environment
 * variable, else its default, and is checked by its zod schema. The result is a frozen Config;
 * nothing else reads process.env.
 */
import path from 'node:path';
import { Option } from 'commander';
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
  let milliseconds: number | undefined;
  try {
    milliseconds = ms(trimmed as ms.StringValue);
  } catch {
    return undefined; // `ms` throws on an empty or overlong string rather than say it is no duration
  }
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
  /** A flag alone turns it on (`--drain`); its variable says true or false. */
  isSwitch?: boolean;
  /**
   * What to show as the default when the schema's own (shown otherwise, see shownDefault) says too
   * little: one derived from other settings, or a behaviour.
   */
  defaultNote?: string;
}

export const setting = <T>(definition: Setting<T>) => definition;
export const switchSetting = (definition: Omit<Setting<boolean>, 'isSwitch'>): Setting<boolean> => ({
  ...definition,
  isSwitch: true,
});

/**
 * A duration in seconds (`5`, `90s`, `5m`, `1h`): its bounds give both the schema and the text
 * `--help` shows, so the two cannot disagree. `range` words the bounds where numbers read badly.
 */
const durationSetting = ({
  min,
  max,
  defaultS,
  range = `${min} to ${max} s`,
  examples = '5, 90s, 5m, 1h',
  purpose,
  ...names
}: {
  env: string;
  flag: string;
  min: number;
  max: number;
  defaultS: number;
  range?: string;
  examples?: string;
  purpose?: string;
}): Setting<number> => ({
  ...names,
  accepts: `a duration from ${range} (${examples})${purpose === undefined ? '' : ` ${purpose}`}`,
  schema: seconds(min, max).default(defaultS),
});

/** The default `--help` and the README show: the note, else what the schema gives for nothing. */
export function shownDefault(definition: Setting): string | undefined {
  if (definition.defaultNote !== undefined) return definition.defaultNote;
  const parsed = definition.schema.safeParse(undefined);
  return parsed.success && parsed.data !== undefined ? String(parsed.data) : undefined;
}

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

/**
 * Every setting, grouped by concern: `config.<group>.<name>`. Each flag's value is found in
 * commander's options under the flag's own name (`--mqtt-broker` → `mqttBroker`).
 */
export const SETTINGS = {
  /** Where the jobs are: the database and the file storage root. */
  store: {
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
      defaultNote: '{CL_SERVER_DIR}/media_store.db',
    }),
    storage: setting({
      env: 'WORKER_STORAGE_DIR',
      flag: '--storage',
      accepts: 'a directory path (the file storage root)',
      schema: nonEmpty.optional(),
      defaultNote: '{CL_SERVER_DIR}/compute',
    }),
    busyTimeout: durationSetting({
      env: 'WORKER_DB_BUSY_TIMEOUT',
      flag: '--db-busy-timeout',
      min: 0,
      max: HOUR_S,
      defaultS: 15,
      purpose: "(how long a write waits for another process's lock)",
    }),
  },
  /** The daemon: who it is, what it serves, and how it claims, retries and stops. */
  daemon: {
    workerId: setting({
      env: 'WORKER_ID',
      flag: '--worker-id',
      accepts: 'letters, digits, ".", "_" or "-" (it is part of an MQTT topic)',
      schema: z
        .string()
        .regex(/^[A-Za-z0-9._-]{1,128}$/)
        .default('worker-default'),
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
      defaultNote: 'every discovered module',
    }),
    modulesDir: setting({
      env: 'WORKER_MODULES_DIR',
      flag: '--modules-dir',
      accepts: 'a directory of compute modules',
      schema: nonEmpty.optional(),
      defaultNote: 'the built-in compute_modules/',
    }),
    pollInterval: durationSetting({
      env: 'WORKER_POLL_INTERVAL',
      flag: '--poll-interval',
      min: 0.001,
      max: HOUR_S,
      defaultS: 5,
      examples: '5, 0.5, 90s, 5m, 1h',
    }),
    concurrency: setting({
      env: 'WORKER_CONCURRENCY',
      flag: '--concurrency',
      accepts: 'an integer from 1 to 256',
      schema: integer(1, 256).default(1),
    }),
    timeout: setting({
      env: 'WORKER_TIMEOUT',
      flag: '--timeout',
      accepts: `N or task=N[,task=N] (seconds > 0, at most ${MAX_TIMER_S})`,
      schema: timeoutSpec.optional(),
      defaultNote: "each module's own",
    }),
    maxTimeout: durationSetting({
      env: 'WORKER_MAX_TIMEOUT',
      flag: '--max-timeout',
      min: 0.1,
      max: MAX_TIMER_S,
      defaultS: DAY_S,
      range: `0.1 to ${MAX_TIMER_S} s`,
      examples: '3600, 90m, 12h, 2d',
      purpose: "(the most a job's metadata.timeout_s may ask for; longer requests run under this)",
    }),
    shutdownGrace: durationSetting({
      env: 'WORKER_SHUTDOWN_GRACE',
      flag: '--shutdown-grace',
      min: 0,
      max: DAY_S,
      defaultS: 30,
    }),
    leaseTtl: durationSetting({
      env: 'WORKER_LEASE_TTL',
      flag: '--lease-ttl',
      min: 0.5,
      max: DAY_S,
      defaultS: 30,
    }),
    orphanAge: durationSetting({
      env: 'WORKER_ORPHAN_AGE',
      flag: '--orphan-age',
      min: 1,
      max: 365 * DAY_S,
      defaultS: 3600,
      range: '1 s to 1 year',
      examples: '5, 90s, 5m, 1h, 30d',
    }),
    retryBackoff: durationSetting({
      env: 'WORKER_RETRY_BACKOFF',
      flag: '--retry-backoff',
      min: 0,
      max: DAY_S,
      defaultS: 5,
      purpose: '(first retry delay)',
    }),
    retryBackoffMax: durationSetting({
      env: 'WORKER_RETRY_BACKOFF_MAX',
      flag: '--retry-backoff-max',
      min: 0,
      max: DAY_S,
      defaultS: 300,
    }),
    drain: switchSetting({
      env: 'WORKER_DRAIN',
      flag: '--drain',
      accepts: 'true or false',
      schema: boolean.default(false),
    }),
  },
  /** The runner processes. */
  runner: {
    reuse: setting({
      env: 'WORKER_RUNNER_REUSE',
      flag: '--runner-reuse',
      accepts: 'an integer >= 0 (jobs per runner process; 0 = no limit)',
      schema: integer(0).default(100),
    }),
    maxMemory: setting({
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
    }),
    maxOutputPixels: setting({
      env: 'MAX_OUTPUT_PIXELS',
      flag: '--max-output-pixels',
      accepts: 'an integer >= 1 (largest output image, in pixels, frames counted, a module will write)',
      schema: integer(1).optional(),
      defaultNote: 'the --max-input-pixels value',
    }),
    inputScope: setting({
      env: 'WORKER_INPUT_SCOPE',
      flag: '--input-scope',
      accepts:
        "'job' (a job reads only under its own jobs/<job_id>/) or 'root' (anywhere under the storage root)",
      schema: z.enum(['job', 'root']).default('job'),
    }),
    killGrace: durationSetting({
      env: 'WORKER_KILL_GRACE',
      flag: '--kill-grace',
      min: 0,
      max: HOUR_S,
      defaultS: 5,
      purpose: 'between SIGTERM and SIGKILL',
    }),
  },
  /** The daemon's own HTTP endpoints. */
  http: {
    port: setting({
      env: 'WORKER_HTTP_PORT',
      flag: '--http-port',
      accepts: 'a TCP port for /healthz, /readyz and /metrics (0: any free port)',
      defaultNote: 'off',
      schema: integer(0, 65_535).optional(),
    }),
    host: setting({
      env: 'WORKER_HTTP_HOST',
      flag: '--http-host',
      accepts: 'the address the HTTP endpoints listen on (they have no authentication)',
      schema: nonEmpty.default('127.0.0.1'),
    }),
  },
  /** `media-worker dashboard`. */
  dashboard: {
    port: setting({
      env: 'DASHBOARD_PORT',
      flag: '--port',
      accepts: 'a TCP port for the dashboard (0: any free port)',
      schema: integer(0, 65_535).default(8080),
    }),
    host: setting({
      env: 'DASHBOARD_HOST',
      flag: '--host',
      accepts: 'the address the dashboard listens on (any but loopback needs a token)',
      schema: nonEmpty.default('127.0.0.1'),
    }),
    token: setting({
      env: 'DASHBOARD_TOKEN',
      flag: '--token',
      accepts: 'a secret of 16 characters or more the dashboard asks for (prefer the env var)',
      schema: nonEmpty.optional(),
    }),
  },
  /** Logging. */
  log: {
    level: setting({
      env: 'LOG_LEVEL',
      flag: '--log-level',
      accepts: 'DEBUG, INFO, WARNING or ERROR',
      defaultNote: 'INFO',
      schema: z
        .string()
        .transform((text) => text.toLowerCase())
        .pipe(z.enum(Object.keys(LOG_LEVELS) as [keyof typeof LOG_LEVELS]))
        .transform((level): LogLevel => LOG_LEVELS[level])
        .default('info'),
    }),
  },
  /** What the daemon publishes, and how often. */
  broadcast: {
    type: setting({
      env: 'BROADCAST_TYPE',
      flag: '--broadcast-type',
      accepts: 'mqtt or noop',
      schema: z.enum(['mqtt', 'noop']).default('mqtt'),
    }),
    heartbeatInterval: durationSetting({
      env: 'MQTT_HEARTBEAT_INTERVAL',
      flag: '--heartbeat-interval',
      min: 1,
      max: DAY_S,
      defaultS: 30,
    }),
    eventsPerJob: switchSetting({
      env: 'MQTT_EVENTS_PER_JOB',
      flag: '--mqtt-events-per-job',
      accepts: 'true or false (also publish on {MQTT_TOPIC}/{job_id})',
      schema: boolean.default(false),
    }),
  },
  /** The MQTT broker and its topics (the daemon, `watch`, `jobs stats` and the dashboard). */
  broker: {
    address: setting({
      env: 'MQTT_BROKER',
      flag: '--mqtt-broker',
      accepts: 'a host name or an mqtt:// / mqtts:// URL',
      schema: nonEmpty.default('localhost'),
    }),
    port: setting({
      env: 'MQTT_PORT',
      flag: '--mqtt-port',
      accepts: 'a port number from 1 to 65535',
      schema: integer(1, 65535).default(1883),
    }),
    username: setting({
      env: 'MQTT_USERNAME',
      flag: '--mqtt-username',
      accepts: 'a user name',
      schema: nonEmpty.optional(),
    }),
    password: setting({
      env: 'MQTT_PASSWORD',
      flag: '--mqtt-password',
      accepts: 'a password (prefer the env var)',
      schema: z.string().optional(),
    }),
    useTls: switchSetting({
      env: 'MQTT_USE_TLS',
      flag: '--mqtt-use-tls',
      accepts: 'true or false',
      schema: boolean.default(false),
      defaultNote: 'false (true for mqtts:// URLs)',
    }),
    caFile: setting({
      env: 'MQTT_CA_FILE',
      flag: '--mqtt-ca-file',
      accepts: 'a PEM file path',
      schema: nonEmpty.optional(),
    }),
    certFile: setting({
      env: 'MQTT_CERT_FILE',
      flag: '--mqtt-cert-file',
      accepts: 'a PEM file path',
      schema: nonEmpty.optional(),
    }),
    keyFile: setting({
      env: 'MQTT_KEY_FILE',
      flag: '--mqtt-key-file',
      accepts: 'a PEM file path',
      schema: nonEmpty.optional(),
    }),
    tlsInsecure: switchSetting({
      env: 'MQTT_TLS_INSECURE',
      flag: '--mqtt-tls-insecure',
      accepts: 'true or false (skip certificate checks)',
      schema: boolean.default(false),
    }),
    protocolVersion: setting({
      env: 'MQTT_PROTOCOL_VERSION',
      flag: '--mqtt-protocol-version',
      accepts: '5 or 4 (3.1.1)',
      schema: z.coerce
        .number()
        .pipe(z.union([z.literal(5), z.literal(4)]))
        .default(5),
      defaultNote: '5, falling back to 4 when the broker refuses it',
    }),
    eventTopic: setting({
      env: 'MQTT_TOPIC',
      flag: '--mqtt-topic',
      accepts: 'an MQTT topic',
      schema: nonEmpty.default('inference/events'),
    }),
    capabilityTopicPrefix: setting({
      env: 'CAPABILITY_TOPIC_PREFIX',
      flag: '--capability-topic-prefix',
      accepts: 'an MQTT topic prefix',
      schema: nonEmpty.default('inference/workers'),
    }),
  },
} as const;

type Settings = typeof SETTINGS;
export type SettingGroup = keyof Settings;
/** A setting by its place in SETTINGS: `{ group: 'broker', name: 'port' }`. */
export type SettingRef = {
  [G in SettingGroup]: { group: G; name: keyof Settings[G] & string };
}[SettingGroup];
type ValueOf<S> = S extends Setting<infer T> ? T : never;
type Parsed = { [G in SettingGroup]: { [K in keyof Settings[G]]: ValueOf<Settings[G][K]> } };

export type Config = Readonly<{
  [G in Exclude<SettingGroup, 'store' | 'daemon'>]: Readonly<Parsed[G]>;
}> &
  Readonly<{
    store: Readonly<{
      /** Undefined when neither DATABASE_URL nor CL_SERVER_DIR is set; commands that need it say so. */
      databaseUrl: string | undefined;
      storageRoot: string | undefined;
      busyTimeout: number;
    }>;
    daemon: Readonly<Omit<Parsed['daemon'], 'modulesDir'> & { modulesDir: string }>;
  }>;

/** Commander's options: each flag's value under the flag's own name (`--mqtt-broker` → `mqttBroker`). */
export type Flags = Readonly<Record<string, unknown>>;

/** Where commander puts a flag's value (`--mqtt-broker` → `mqttBroker`), as commander itself names it. */
export const flagAttribute = (flag: string) => new Option(flag).attributeName();

export const settingOf = (ref: SettingRef): Setting =>
  (SETTINGS[ref.group] as Readonly<Record<string, Setting>>)[ref.name] as Setting;

/** Every setting of these groups, in table order. */
export function settingsIn(...groups: SettingGroup[]): SettingRef[] {
  return groups.flatMap((group) =>
    Object.keys(SETTINGS[group]).map((name) => ({ group, name }) as SettingRef),
  );
}

/** Parses flags (winning) and environment variables; throws ConfigError naming the bad one. */
export function loadConfig(flags: Flags, env: NodeJS.ProcessEnv, defaultModulesDir: string): Config {
  const parsed: Record<string, Record<string, unknown>> = {};
  for (const [group, definitions] of Object.entries(SETTINGS)) {
    const values: Record<string, unknown> = {};
    for (const [name, definition] of Object.entries(definitions) as [string, Setting][]) {
      values[name] = parseSetting(definition, flags[flagAttribute(definition.flag)], env);
    }
    parsed[group] = values;
  }
  const settings = parsed as unknown as Parsed;
  const { serverDir, databaseUrl, storage, busyTimeout } = settings.store;
  const storageDir = storage ?? (serverDir ? path.join(serverDir, 'compute') : undefined);
  const frozen = <T extends object>(value: T): Readonly<T> => Object.freeze(value);
  return frozen({
    store: frozen({
      databaseUrl: databaseUrl ?? (serverDir ? path.join(serverDir, 'media_store.db') : undefined),
      storageRoot: storageDir ? path.resolve(storageDir) : undefined,
      busyTimeout,
    }),
    daemon: frozen({
      ...settings.daemon,
      modulesDir: path.resolve(settings.daemon.modulesDir ?? defaultModulesDir),
    }),
    runner: frozen(settings.runner),
    http: frozen(settings.http),
    dashboard: frozen(settings.dashboard),
    log: frozen(settings.log),
    broadcast: frozen(settings.broadcast),
    broker: frozen(settings.broker),
  });
}

/** The database URL, for commands that read or write only the database (`jobs …`). */
export function requireDatabaseUrl(config: Config): string {
  const { databaseUrl } = config.store;
  if (!databaseUrl) {
    throw new ConfigError('no database: set CL_SERVER_DIR (or DATABASE_URL, or --database-url)');
  }
  return databaseUrl;
}

/** The database and storage root, or a ConfigError saying how to set them. */
export function requireStorePaths(config: Config): { databaseUrl: string; storageRoot: string } {
  const databaseUrl = requireDatabaseUrl(config);
  const { storageRoot } = config.store;
  if (!storageRoot) {
    throw new ConfigError('no storage root: set CL_SERVER_DIR (or WORKER_STORAGE_DIR, or --storage)');
  }
  return { databaseUrl, storageRoot };
}
