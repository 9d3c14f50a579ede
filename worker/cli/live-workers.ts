/**
 * Which task types live workers serve, from their retained announcements on
 * `{CAPABILITY_TOPIC_PREFIX}/+` (a worker that died has its announcement cleared by its Last Will;
 * one silent for two heartbeats counts as gone too).
 */
import mqtt from 'mqtt';
import { brokerAddress } from '../broadcast/mqtt-options.js';
import type { Config } from '../config/config.js';
import { collectRetained } from '../mqtt-tools/retained-messages.js';
import { applyCapabilityMessage, emptyWatchState, isStale } from '../watch/watch-state.js';

const CONNECT_TIMEOUT_MS = 5000;
const RETAINED_IDLE_MS = 1000;

export type LiveTaskTypes = { known: true; types: ReadonlySet<string> } | { known: false; reason: string };

export async function liveTaskTypes(config: Config): Promise<LiveTaskTypes> {
  const address = brokerAddress(config.broker);
  let client: mqtt.MqttClient;
  try {
    client = await mqtt.connectAsync(address.url, {
      ...address.options,
      reconnectPeriod: 0,
      connectTimeout: CONNECT_TIMEOUT_MS,
    });
  } catch (error) {
    return { known: false, reason: `broker ${address.url} unreachable: ${(error as Error).message}` };
  }
  try {
    const { messages } = await collectRetained(
      client,
      `${config.broker.capabilityTopicPrefix}/+`,
      RETAINED_IDLE_MS,
    );
    // Read as `watch` reads them: an empty payload is a Will that cleared a dead worker.
    const now = Date.now();
    const state = emptyWatchState();
    for (const { topic, payload } of messages) {
      applyCapabilityMessage(
        state,
        topic.slice(config.broker.capabilityTopicPrefix.length + 1),
        payload,
        now,
      );
    }
    const types = new Set<string>();
    for (const worker of state.workers.values()) {
      if (!isStale(worker, now)) for (const type of worker.capabilities) types.add(type);
    }
    return { known: true, types };
  } finally {
    await client.endAsync(true).catch(() => {});
  }
}
