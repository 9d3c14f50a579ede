/** `media-worker watch`: a live view of workers and running jobs, or one JSON line per message. */
import mqtt from 'mqtt';
import { brokerAddress } from '../broadcast/mqtt-options.js';
import type { Config } from '../config/config.js';
import { topicMatches } from '../mqtt-tools/topic-filter.js';
import { renderWatch } from '../watch/render-watch.js';
import { applyCapabilityMessage, applyJobEvent, emptyWatchState, pruneJobs } from '../watch/watch-state.js';

const REDRAW_MS = 250;

export async function watch(config: Config, options: { json: boolean }): Promise<void> {
  const address = brokerAddress(config);
  const capabilityFilter = `${config.capabilityTopicPrefix}/+`;
  const client = mqtt.connect(address.url, { ...address.options, reconnectPeriod: 1000, resubscribe: true });
  const state = emptyWatchState();
  let connected = false;

  client.on('connect', () => {
    connected = true;
    void client.subscribeAsync([capabilityFilter, config.mqttTopic], { qos: 0 });
  });
  client.on('close', () => {
    connected = false;
  });
  client.on('message', (topic, buffer, packet) => {
    const payload = buffer.toString('utf8');
    const now = Date.now();
    if (options.json) {
      let parsed: unknown = payload;
      try {
        parsed = payload === '' ? null : JSON.parse(payload);
      } catch {
        // not JSON: printed as the raw string
      }
      process.stdout.write(
        `${JSON.stringify({ topic, retained: packet.retain, received_at: now, payload: parsed })}\n`,
      );
      return;
    }
    if (topicMatches(capabilityFilter, topic)) {
      applyCapabilityMessage(state, topic.slice(config.capabilityTopicPrefix.length + 1), payload, now);
    } else {
      applyJobEvent(state, payload, now);
    }
  });

  const redraw = options.json
    ? undefined
    : setInterval(() => {
        const now = Date.now();
        pruneJobs(state, now);
        const status = connected ? address.url : `${address.url} (connecting…)`;
        process.stdout.write(`\x1b[H\x1b[2J${renderWatch(state, now, status)}\n`);
      }, REDRAW_MS);

  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  clearInterval(redraw);
  await client.endAsync(true);
}
