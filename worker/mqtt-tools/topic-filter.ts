/** MQTT topic filter matching (`+` one level, `#` the rest) and durations like `90s`, `5m`, `2h`, `1d`. */

export function topicMatches(filter: string, topic: string): boolean {
  const filterLevels = filter.split('/');
  const topicLevels = topic.split('/');
  for (let index = 0; index < filterLevels.length; index += 1) {
    const level = filterLevels[index];
    if (level === '#') return index > 0 || !topic.startsWith('$');
    if (index >= topicLevels.length) return false;
    if (level === '+') {
      if (index === 0 && topic.startsWith('$')) return false;
      continue;
    }
    if (level !== topicLevels[index]) return false;
  }
  return filterLevels.length === topicLevels.length;
}

/** A pattern with no fixed first level (`#`, `+/…`) reaches every topic of the broker. */
export function isBroadPattern(filter: string): boolean {
  const first = filter.split('/')[0];
  return first === '#' || first === '+';
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * (UNITS[match[2] ?? 's'] as number);
}
