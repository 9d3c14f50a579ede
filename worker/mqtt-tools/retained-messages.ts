/**
 * Reading and clearing retained messages. Mosquitto delivers at most about 1,020 retained messages
 * to a QoS >= 1 subscriber, so the subscription is QoS 0. There is no "end of retained" marker:
 * collection ends after an idle time with no new retained message. Our own clears come back as
 * empty non-retained messages and are ignored.
 */
import type { MqttClient } from 'mqtt';

export interface RetainedMessage {
  topic: string;
  payload: string;
}

export async function collectRetained(
  client: MqttClient,
  pattern: string,
  idleMs: number,
): Promise<RetainedMessage[]> {
  const found = new Map<string, string>();
  let lastSeen = Date.now();
  const onMessage = (topic: string, payload: Buffer, packet: { retain: boolean }) => {
    if (!packet.retain || payload.length === 0) return;
    found.set(topic, payload.toString('utf8'));
    lastSeen = Date.now();
  };
  client.on('message', onMessage);
  try {
    await client.subscribeAsync(pattern, { qos: 0 });
    lastSeen = Date.now();
    while (Date.now() - lastSeen < idleMs) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(50, idleMs)));
    }
    await client.unsubscribeAsync(pattern);
  } finally {
    client.off('message', onMessage);
  }
  return [...found].map(([topic, payload]) => ({ topic, payload }));
}

/** Publishes an empty retained payload to each topic (QoS 1, so each clear is acknowledged). */
export async function clearRetained(client: MqttClient, topics: readonly string[]): Promise<void> {
  const window = 500;
  for (let start = 0; start < topics.length; start += window) {
    await Promise.all(
      topics
        .slice(start, start + window)
        .map((topic) => client.publishAsync(topic, '', { qos: 1, retain: true })),
    );
  }
}

/** The payload's `timestamp` (ms) if it is a JSON object with one. */
export function payloadTimestamp(payload: string): number | undefined {
  try {
    const parsed = JSON.parse(payload) as { timestamp?: unknown };
    return typeof parsed?.timestamp === 'number' ? parsed.timestamp : undefined;
  } catch {
    return undefined;
  }
}
