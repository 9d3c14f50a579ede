/**
 * pino JSON on stdout; human-readable through pino-pretty when stdout is a terminal. Logged values
 * may quote row data (a 5 MB parameter, a megabyte-long job_id), so every string is bounded and
 * deep or long structures are cut, and marked as cut.
 */
import { type Logger, pino } from 'pino';
import { boundText } from '../jobs/bounded-text.js';

export type { Logger };

const LOGGED_STRING_LIMIT = 4096;
/** Bound into every line of a job's logger, so kept short. */
const BINDING_STRING_LIMIT = 200;
const LOGGED_DEPTH_LIMIT = 6;
const LOGGED_ENTRIES_LIMIT = 50;

export function createLogger(level: string, base: Record<string, unknown> = {}): Logger {
  const options = {
    level,
    base: { pid: process.pid, ...base },
    // pino does not format a child's bindings: children that bind row data come from boundedChild.
    formatters: { log: (object: Record<string, unknown>) => boundLogged(object) as Record<string, unknown> },
    serializers: { err: (error: unknown) => boundLogged(pino.stdSerializers.err(error as Error)) },
  };
  if (process.stdout.isTTY) {
    return pino({
      ...options,
      transport: { target: 'pino-pretty', options: { colorize: true, destination: 1 } },
    });
  }
  return pino(options, pino.destination({ dest: 1, sync: false }));
}

/** A child logger whose bindings (row data such as a job_id) are bounded like every logged value. */
export function boundedChild(log: Logger, bindings: Record<string, unknown>): Logger {
  const bounded = Object.entries(bindings).map(([key, value]) => [
    key,
    typeof value === 'string' ? boundText(value, BINDING_STRING_LIMIT) : boundLogged(value),
  ]);
  return log.child(Object.fromEntries(bounded));
}

/** Errors are left to the `err` serializer, which bounds what it makes of them. */
export function boundLogged(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return boundText(value, LOGGED_STRING_LIMIT);
  if (typeof value !== 'object' || value === null || value instanceof Error) return value;
  if (depth >= LOGGED_DEPTH_LIMIT) return '[nested too deep; cut]';
  const entries = Array.isArray(value)
    ? value.map((item, index) => [index, item] as const)
    : Object.entries(value);
  const kept = entries
    .slice(0, LOGGED_ENTRIES_LIMIT)
    .map(([key, item]) => [key, boundLogged(item, depth + 1)] as const);
  if (Array.isArray(value)) {
    const items = kept.map(([, item]) => item);
    if (entries.length > kept.length) items.push(`[${entries.length - kept.length} more; cut]`);
    return items;
  }
  const object = Object.fromEntries(kept);
  if (entries.length > kept.length) object['…'] = `${entries.length - kept.length} more keys; cut`;
  return object;
}
