/**
 * Reading and clearing retained messages. Mosquitto delivers at most about 1,020 retained messages
 * to a QoS >= 1 subscriber, so the subscription is QoS 0. MQTT has no "end of retained" marker, so
 * we make one: after the subscription is acknowledged we publish to a private topic we also
 * subscribe to. The broker queues a subscription's retained messages while handling the SUBSCRIBE,
 * before it reads our later PUBLISH, so when the marker comes back every retained message the
 * broker sent came before it, however slowly they were read. Only if the marker never comes back
 * (an ACL forbids it) does collection end after an idle time with no retained message. Our own
 * clears come back as empty non-retained messages and are ignored.
 */
import { randomUUID } from 'node:crypto';
import type { MqttClient } from 'mqtt';

const END_MARKER_PREFIX = 'cleanup-mqtt/end-of-retained';

export interface RetainedMessage {
  topic: string;
  payload: string;
}

export interface RetainedCollection {
  messages: RetainedMessage[];
  /** The end marker came back: every retained message under the pattern is in `messages`. */
  complete: boolean;
}

export async function collectRetained(
  client: MqttClient,
  pattern: string,
  idleMs: number,
): Promise<RetainedCollection> {
  const marker = `${END_MARKER_PREFIX}/${randomUUID()}`;
  const found = new Map<string, string>();
  let complete = false;
  let finished = false;
  let lastRetainedAt = Date.now();
  let idle: NodeJS.Timeout | undefined;
  let ended: () => void = () => {};
  const end = new Promise<void>((resolve) => {
    ended = resolve;
  });
  const checkIdle = () => {
    // setImmediate runs after pending I/O is read: a process that was paused longer than idleMs
    // reads what arrived meanwhile before concluding that nothing did.
    setImmediate(() => {
      if (finished) return;
      const quietMs = Date.now() - lastRetainedAt;
      if (quietMs >= idleMs) ended();
      else idle = setTimeout(checkIdle, idleMs - quietMs);
    });
  };
  const onMessage = (topic: string, payload: Buffer, packet: { retain: boolean }) => {
    if (topic === marker) {
      complete = true;
      ended();
      return;
    }
    if (!packet.retain || payload.length === 0) return;
    found.set(topic, payload.toString('utf8'));
    lastRetainedAt = Date.now();
  };
  client.on('message', onMessage);
  try {
    await client.subscribeAsync(marker, { qos: 0 });
    await client.subscribeAsync(pattern, { qos: 0 });
    lastRetainedAt = Date.now();
    idle = setTimeout(checkIdle, idleMs);
    await client.publishAsync(marker, '', { qos: 0 });
    await end;
    await client.unsubscribeAsync([pattern, marker]);
  } finally {
    finished = true;
    clearTimeout(idle);
    client.off('message', onMessage);
  }
  return { messages: [...found].map(([topic, payload]) => ({ topic, payload })), complete };
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
