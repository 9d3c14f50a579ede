/**
 * Row data can be anything the API stored: a 5 MB parameter value, a job_id of a megabyte. Whatever
 * quotes it (an error_message, a log line, an MQTT payload) keeps its head — where the cause is —
 * and its tail, and says how much was cut.
 */

/** Longest error_message the worker writes. */
export const ERROR_MESSAGE_LIMIT = 4096;
/** Longest quoted value inside a message. */
export const QUOTED_VALUE_LIMIT = 200;

export function boundText(text: string, limit: number): string {
  if (text.length <= limit) return text;
  const marker = ` …[${text.length - limit} of ${text.length} characters cut]… `;
  const keep = Math.max(0, limit - marker.length);
  const head = Math.ceil(keep * 0.75);
  return text.slice(0, head) + marker + text.slice(text.length - (keep - head));
}

/** A value as JSON for a message, bounded (a deeply nested value is described, not serialised). */
export function quoteValue(value: unknown, limit = QUOTED_VALUE_LIMIT): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = Array.isArray(value) ? '[…]' : typeof value === 'object' ? '{…}' : String(value);
  }
  return boundText(text, limit);
}
