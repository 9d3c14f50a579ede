import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import mqtt from 'mqtt';
import { type Broker, HANG_GUARD_MS, startBroker, subscribe } from '../helpers/mosquitto.js';
import { selfSignedCertificate } from '../helpers/tls.js';
import { killLeftoverWorkers, startWorker } from '../helpers/worker-process.js';
import { createWorkspace, type Workspace, waitFor } from '../helpers/workspace.js';

const announced =
  (workerId: string, check: (payload: Record<string, unknown>) => boolean = () => true) =>
  (message: { topic: string; payload: string }) =>
    message.topic === `inference/workers/${workerId}` &&
    message.payload !== '' &&
    check(JSON.parse(message.payload));

describe('MQTT credentials, TLS, protocol and draining (real Mosquitto)', () => {
  let workspace: Workspace;
  let broker: Broker | undefined;
  beforeEach(async () => {
    workspace = await createWorkspace();
  });
  afterEach(async () => {
    killLeftoverWorkers();
    await broker?.stop();
    broker = undefined;
    await workspace.cleanup();
  });

  test('refused credentials: jobs still complete, the refusal is logged once, no secret is printed', async () => {
    const authBroker = await startBroker({ users: { worker: 'right-secret-42' } });
    broker = authBroker;
    const jobId = await workspace.addJob('noop');
    const refused = startWorker(workspace.dir, ['--worker-id', 'w-auth', '--tasks', 'noop'], {
      BROADCAST_TYPE: 'mqtt',
      MQTT_BROKER: broker.url,
      MQTT_USERNAME: 'worker',
      MQTT_PASSWORD: 'wrong-secret-17',
    });
    await waitFor(
      async () => (await workspace.store.getJob(jobId))?.status === 'completed',
      'the job to complete',
      HANG_GUARD_MS,
    );
    await refused.waitForLog(
      (line) => String(line.msg).startsWith('MQTT broker refused the credentials'),
      HANG_GUARD_MS,
    );
    // Each attempt starts only after the previous one closed, so when the broker has refused three,
    // the daemon has handled at least two refusals.
    await waitFor(
      () => authBroker.logLines().filter((line) => line.includes('disconnected, not authorised')).length >= 3,
      'three refused connection attempts',
      HANG_GUARD_MS,
    );
    refused.child.kill('SIGTERM');
    assert.equal((await refused.exited).code, 0);
    const output = JSON.stringify(refused.logs) + refused.stderr();
    assert.equal(
      refused.logs.filter((line) => String(line.msg).startsWith('MQTT broker refused')).length,
      1,
      'logged once',
    );
    assert.doesNotMatch(output, /wrong-secret-17|right-secret-42/);

    const subscriber = await subscribe(`mqtt://worker:right-secret-42@127.0.0.1:${broker.port}`, [
      'inference/workers/#',
    ]);
    const accepted = startWorker(workspace.dir, ['--worker-id', 'w-auth', '--tasks', 'noop'], {
      BROADCAST_TYPE: 'mqtt',
      MQTT_BROKER: `mqtt://worker:right-secret-42@127.0.0.1:${broker.port}`,
    });
    await subscriber.waitFor(announced('w-auth'), 'the announcement with credentials from the URL');
    accepted.child.kill('SIGTERM');
    assert.equal((await accepted.exited).code, 0);
    assert.doesNotMatch(JSON.stringify(accepted.logs) + accepted.stderr(), /right-secret-42/);
    await subscriber.close();
  });

  test('TLS with a CA file: the worker announces over mqtts://', async () => {
    const certFile = path.join(workspace.dir, 'broker.crt');
    const keyFile = path.join(workspace.dir, 'broker.key');
    selfSignedCertificate(certFile, keyFile);
    broker = await startBroker({ tls: { certFile, keyFile } });
    const client = await mqtt.connectAsync(broker.url, { ca: fs.readFileSync(certFile) });
    const seen: string[] = [];
    client.on('message', (topic, payload) => seen.push(`${topic} ${payload.toString()}`));
    await client.subscribeAsync('inference/workers/#');
    const worker = startWorker(workspace.dir, ['--worker-id', 'w-tls', '--tasks', 'noop'], {
      BROADCAST_TYPE: 'mqtt',
      MQTT_BROKER: `127.0.0.1`,
      MQTT_PORT: String(broker.port),
      MQTT_USE_TLS: 'true',
      MQTT_CA_FILE: certFile,
    });
    await waitFor(
      () => seen.find((line) => line.startsWith('inference/workers/w-tls {')),
      'the announcement over TLS',
      HANG_GUARD_MS,
    );
    worker.child.kill('SIGTERM');
    assert.equal((await worker.exited).code, 0);
    await client.endAsync();
  });

  test('MQTT 3.1.1: announcement, and the Will on kill -9', async () => {
    broker = await startBroker();
    const subscriber = await subscribe(broker.url, ['inference/workers/#']);
    try {
      const worker = startWorker(
        workspace.dir,
        ['--worker-id', 'w-v4', '--tasks', 'noop', '--mqtt-protocol-version', '4'],
        {
          BROADCAST_TYPE: 'mqtt',
          MQTT_BROKER: broker.url,
        },
      );
      await subscriber.waitFor(announced('w-v4'), 'the announcement');
      // Waited for, not looked up: the log line may reach stdout after the broker delivered.
      await worker.waitForLog((line) => line.msg === 'MQTT connected' && line.mqtt_version === 4);
      worker.child.kill('SIGKILL');
      await worker.exited;
      await subscriber.waitFor(
        (message) => message.topic === 'inference/workers/w-v4' && message.payload === '',
        'the Will',
      );
    } finally {
      // Closed whatever happened: an open subscription would hold this file's process until the
      // runner's timeout.
      await subscriber.close();
    }
  });

  test('graceful stop announces draining while a job finishes, then clears', async () => {
    broker = await startBroker();
    const subscriber = await subscribe(broker.url, ['inference/workers/#']);
    const startedFile = path.join(workspace.dir, 'started');
    const jobId = await workspace.addJob('sleep', { seconds: 1, started_file: startedFile });
    const worker = startWorker(
      workspace.dir,
      ['--worker-id', 'w-drain', '--tasks', 'sleep', '--shutdown-grace', '10'],
      {
        BROADCAST_TYPE: 'mqtt',
        MQTT_BROKER: broker.url,
      },
    );
    await waitFor(() => fs.existsSync(startedFile), 'the job to start', HANG_GUARD_MS);
    worker.child.kill('SIGTERM');
    await subscriber.waitFor(
      announced('w-drain', (payload) => payload.state === 'draining'),
      'state draining',
    );
    assert.equal((await worker.exited).code, 0);
    assert.equal((await workspace.store.getJob(jobId))?.status, 'completed');
    await subscriber.waitFor(
      (message) => message.topic === 'inference/workers/w-drain' && message.payload === '',
      'the clear',
    );
    const drainingAt = subscriber.messages.findIndex(
      announced('w-drain', (payload) => payload.state === 'draining'),
    );
    const clearedAt = subscriber.messages.findIndex(
      (message) => message.topic === 'inference/workers/w-drain' && message.payload === '',
    );
    assert.ok(drainingAt < clearedAt, 'draining, then cleared');
    await subscriber.close();
  });
});
