/** MQTT topic filter matching: `+` is one level, `#` the rest; `$` topics only by name. */

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
