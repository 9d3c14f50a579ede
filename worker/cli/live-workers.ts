/**
 * Which task types live workers serve, from their retained announcements on
 * `{CAPABILITY_TOPIC_PREFIX}/+` (a worker that died has its announcement cleared by its Last Will;
 * one silent for two heartbeats counts as gone too).
 */
import mqtt from 'mqtt';
import { brokerAddress } from '../broadcast/mqtt-options.js';
import type { Config } from '../config/config.js';
import { collectRetained } from '../mqtt-tools/retained-messages.js';

const CONNECT_TIMEOUT_MS = 5000;
const RETAINED_IDLE_MS = 1000;

export type LiveTaskTypes = { known: true; types: ReadonlySet<string> } | { known: false; reason: string };

export async function liveTaskTypes(config: Config): Promise<LiveTaskTypes> {
  const address = brokerAddress(config);
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
    const { messages } = await collectRetained(client, `${config.capabilityTopicPrefix}/+`, RETAINED_IDLE_MS);
    const now = Date.now();
    const types = new Set<string>();
    for (const { payload } of messages) {
      const announcement = parseAnnouncement(payload);
      if (!announcement || now - announcement.timestamp > announcement.heartbeatS * 2000) continue;
      for (const type of announcement.capabilities) types.add(type);
    }
    return { known: true, types };
  } finally {
    await client.endAsync(true).catch(() => {});
  }
}

function parseAnnouncement(
  payload: string,
): { capabilities: string[]; timestamp: number; heartbeatS: number } | undefined {
  try {
    const parsed = JSON.parse(payload) as Record<string, unknown>;
    const capabilities = Array.isArray(parsed.capabilities)
      ? parsed.capabilities.filter((item): item is string => typeof item === 'string')
      : [];
    const timestamp = typeof parsed.timestamp === 'number' ? parsed.timestamp : 0;
    const heartbeatS = typeof parsed.heartbeat_interval_s === 'number' ? parsed.heartbeat_interval_s : 30;
    return { capabilities, timestamp, heartbeatS };
  } catch {
    return undefined;
  }
}
