import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { collectRetained } from '../../worker/mqtt-tools/retained-messages.js';
import { type Broker, HANG_GUARD_MS, startBroker } from '../helpers/mosquitto.js';
import { DIST, runScript } from '../helpers/worker-process.js';

const SCRIPT = `${DIST}cleanup-mqtt.js`;

const runCleanup = (args: string[]) => runScript(SCRIPT, args);

/**
 * Every retained message under the pattern: collection ends when the end marker comes back, not
 * after a quiet spell, so a paused machine does not cut it short (the long idle time is only the
 * fallback for a marker that never returns, and `complete` says it did return).
 */
async function retainedTopics(client: MqttClient, pattern: string): Promise<string[]> {
  const { messages, complete } = await collectRetained(client, pattern, HANG_GUARD_MS);
  assert.equal(complete, true, 'the end-of-retained marker came back');
  return messages.map((message) => message.topic).sort();
}

async function retain(
  client: MqttClient,
  topics: string[],
  payload: (index: number) => string,
): Promise<void> {
  for (let start = 0; start < topics.length; start += 500) {
    await Promise.all(
      topics
        .slice(start, start + 500)
        .map((topic, offset) =>
          client.publishAsync(topic, payload(start + offset), { qos: 1, retain: true }),
        ),
    );
  }
}

describe('cleanup-mqtt (real Mosquitto)', () => {
  let broker: Broker;
  let client: MqttClient;
  before(async () => {
    broker = await startBroker();
    client = await mqtt.connectAsync(broker.url);
  });
  after(async () => {
    await client.endAsync();
    await broker.stop();
  });

  test('5,000 retained topics: --dry-run lists, --older-than keeps live workers, the rest is cleared', async (t) => {
    const stale = Array.from({ length: 4000 }, (_, index) => `inference/workers/stale-${index}`);
    const live = Array.from({ length: 1000 }, (_, index) => `inference/workers/live-${index}`);
    const hour = 3_600_000;
    await retain(client, stale, () => JSON.stringify({ id: 'x', timestamp: Date.now() - 2 * hour }));
    await retain(client, live, () => JSON.stringify({ id: 'y', timestamp: Date.now() }));
    await retain(client, ['other/keep'], () => 'not a worker');

    const dryRun = await runCleanup([
      'inference/workers/#',
      '127.0.0.1',
      String(broker.port),
      '--older-than',
      '1h',
      '--dry-run',
    ]);
    assert.equal(dryRun.code, 0, dryRun.stderr);
    assert.match(dryRun.stdout, /4000 retained message\(s\) would be cleared/);
    assert.equal(
      (await retainedTopics(client, 'inference/workers/#')).length,
      5000,
      'dry run cleared nothing',
    );

    const started = Date.now();
    const cleanup = await runCleanup([
      'inference/workers/#',
      '127.0.0.1',
      String(broker.port),
      '--older-than',
      '1h',
      '--exclude',
      'inference/workers/stale-1',
    ]);
    t.diagnostic(`cleared 3,999 retained topics in ${Date.now() - started} ms`);
    assert.equal(cleanup.code, 0, cleanup.stderr);
    assert.match(cleanup.stdout, /cleared 3999 of 3999 retained message\(s\)/);

    assert.deepEqual(
      await retainedTopics(client, '#'),
      [...live, 'inference/workers/stale-1', 'other/keep'].sort(),
    );
  });

  test('a pattern that reaches every topic is refused without a terminal unless --yes', async () => {
    await retain(client, ['scratch/a'], () => 'x');
    const refused = await runCleanup(['#', '127.0.0.1', String(broker.port)]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /not clearing '#'/);
    const accepted = await runCleanup(['#', '--url', broker.url, '--yes']);
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.deepEqual(await retainedTopics(client, '#'), []);
  });

  test('an unreachable broker is a clear error', async () => {
    const result = await runCleanup(['a/#', '127.0.0.1', '1']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /cannot connect to mqtt:\/\/127\.0\.0\.1:1/);
  });
});
