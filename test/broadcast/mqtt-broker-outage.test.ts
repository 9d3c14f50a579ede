import assert from 'node:assert/strict';
import net from 'node:net';
import { afterEach, beforeEach, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import {
  type Broker,
  HANG_GUARD_MS,
  type SubscribeOptions,
  type Subscriber,
  startBroker,
  subscribe,
} from '../helpers/mosquitto.js';
import { killLeftoverWorkers, startWorker, type WorkerProcess } from '../helpers/worker-process.js';
import { createWorkspace, type Workspace, waitFor } from '../helpers/workspace.js';

type Message = { topic: string; payload: string };
const eventOf = (message: Message) =>
  message.topic === 'inference/events' ? (JSON.parse(message.payload) as Record<string, unknown>) : undefined;
const isCompleted = (message: Message) => eventOf(message)?.event_type === 'completed';
const isAnnouncement = (workerId: string) => (message: Message) =>
  message.topic === `inference/workers/${workerId}` && message.payload !== '';
const isCleared = (workerId: string) => (message: Message) =>
  message.topic === `inference/workers/${workerId}` && message.payload === '';
const LOST_EVENTS_LOG = 'job events lost: not acknowledged by the broker before stop';

function completedJobIds(databasePath: string): string[] {
  const db = new Database(databasePath, { readonly: true });
  try {
    return (
      db.prepare("SELECT job_id FROM jobs WHERE status = 'completed'").all() as { job_id: string }[]
    ).map((row) => row.job_id);
  } finally {
    db.close();
  }
}

/** Stands in for a broker on `port`: accepts each connection and closes it at once, counting them. */
async function refuseConnections(port: number): Promise<{ count: number; close(): Promise<void> }> {
  const attempts = { count: 0 };
  const server = net.createServer((socket) => {
    attempts.count += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return Object.assign(attempts, {
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}

/** SIGTERM, then the exit (`exited` kills a daemon that hangs and fails the test, naming it). */
async function stopWorker(worker: WorkerProcess): Promise<{ code: number | null; stopMs: number }> {
  const sentAt = Date.now();
  worker.child.kill('SIGTERM');
  const { code } = await worker.exited;
  return { code, stopMs: Date.now() - sentAt };
}

describe('MQTT across broker outages (real Mosquitto)', () => {
  let workspace: Workspace;
  let broker: Broker | undefined;
  let subscribers: Subscriber[] = [];
  const mqttEnv = () => ({ BROADCAST_TYPE: 'mqtt', MQTT_BROKER: broker?.url ?? '' });
  const watch = async (url: string, topics: string[], options: SubscribeOptions = {}) => {
    const subscriber = await subscribe(url, topics, options);
    subscribers.push(subscriber);
    return subscriber;
  };

  beforeEach(async () => {
    workspace = await createWorkspace();
  });
  afterEach(async () => {
    killLeftoverWorkers();
    await Promise.all(subscribers.map((subscriber) => subscriber.close()));
    subscribers = [];
    broker?.resume();
    await broker?.stop();
    broker = undefined;
    await workspace.cleanup();
  });

  test('jobs complete while the broker is down; announcements resume when it returns', async () => {
    broker = await startBroker();
    const subscriber = await watch(broker.url, ['inference/workers/#']);
    await broker.stop();
    const jobId = await workspace.addJob('noop');
    const worker = startWorker(workspace.dir, ['--worker-id', 'w-down', '--tasks', 'noop'], mqttEnv());
    await waitFor(
      async () => (await workspace.store.getJob(jobId))?.status === 'completed',
      'the job to complete without a broker',
      HANG_GUARD_MS,
    );
    await worker.waitForLog((line) => String(line.msg).startsWith('MQTT broker unreachable'), HANG_GUARD_MS);
    await broker.restart();
    await subscriber.waitFor(isAnnouncement('w-down'), 'the announcement after the broker returned');
    assert.equal(
      worker.logs.filter((line) => String(line.msg).startsWith('MQTT broker unreachable')).length,
      1,
      'the outage, over every failed attempt, is logged once',
    );
    worker.child.kill('SIGTERM');
    assert.equal((await worker.exited).code, 0);
  });

  test('re-announces after a broker restart (retained state lost)', async () => {
    broker = await startBroker();
    const subscriber = await watch(broker.url, ['inference/workers/#']);
    const worker = startWorker(workspace.dir, ['--worker-id', 'w-restart', '--tasks', 'noop'], mqttEnv());
    await subscriber.waitFor(isAnnouncement('w-restart'), 'the first announcement');
    const before = subscriber.messages.length;
    await broker.restart();
    await waitFor(
      () => subscriber.messages.slice(before).find(isAnnouncement('w-restart')),
      'a new announcement',
      HANG_GUARD_MS,
    );
    worker.child.kill('SIGTERM');
    assert.equal((await worker.exited).code, 0);
  });

  test('a broker restart mid-stream loses no completed event, and a stop afterwards exits and clears the announcement', async (t) => {
    broker = await startBroker({ persistence: true });
    // A persistent QoS 1 session: what the daemon publishes while this subscriber is itself
    // reconnecting after the restart is kept for it, so a missing event is the daemon's loss.
    const subscriber = await watch(broker.url, ['inference/events', 'inference/workers/#'], {
      session: 'outage-watcher',
    });
    for (let index = 0; index < 2500; index += 1) await workspace.addJob('noop');
    const worker = startWorker(
      workspace.dir,
      [
        '--worker-id',
        'w-outage',
        '--tasks',
        'noop',
        '--concurrency',
        '2',
        '--runner-reuse',
        '0',
        '--shutdown-grace',
        '5',
        '--log-level',
        'WARNING', // two info lines per job would cost the daemon and this process more than the jobs
      ],
      mqttEnv(),
    );
    const completedEvents = () => subscriber.messages.filter(isCompleted).length;
    await waitFor(() => completedEvents() >= 300, 'completed events before the restart', HANG_GUARD_MS);
    const rateFrom = { at: Date.now(), done: completedJobIds(workspace.databasePath).length };

    await broker.restart();
    const restartedAt = Date.now();
    const eventsAtRestart = completedEvents();
    await subscriber.waitFor(
      (message) =>
        isAnnouncement('w-outage')(message) && Number(JSON.parse(message.payload).timestamp) >= restartedAt,
      'an announcement from the reconnected daemon',
    );
    await waitFor(
      () => completedEvents() >= eventsAtRestart + 300,
      'completed events to keep coming after the reconnect',
      HANG_GUARD_MS,
    );
    const rateTo = { at: Date.now(), done: completedJobIds(workspace.databasePath).length };
    const rate = ((rateTo.done - rateFrom.done) * 1000) / (rateTo.at - rateFrom.at);
    t.diagnostic(`jobs completed across the restart: ${rate.toFixed(0)} jobs/s (target >= 200)`);
    assert.ok(Number.isFinite(rate) && rate > 0, `the achieved rate is measured: ${rate}`);

    const { code, stopMs } = await stopWorker(worker);
    t.diagnostic(`stop took ${stopMs} ms (shutdown grace 5 s)`);
    assert.equal(code, 0, worker.stderr());
    await subscriber.waitFor(isCleared('w-outage'), 'the announcement cleared at stop');

    const completed = completedJobIds(workspace.databasePath);
    const missing = () => {
      const seen = new Set(
        subscriber.messages.filter(isCompleted).map((message) => eventOf(message)?.job_id),
      );
      return completed.filter((jobId) => !seen.has(jobId));
    };
    await waitFor(
      () => missing().length === 0,
      'a completed event for every completed job',
      HANG_GUARD_MS,
    ).catch(() => undefined);
    assert.deepEqual(
      missing(),
      [],
      `${missing().length} of ${completed.length} completed jobs have no completed event`,
    );
    t.diagnostic(
      `${completed.length} jobs completed, ${subscriber.messages.filter(isCompleted).length} completed events received`,
    );
    assert.equal(
      worker.logs.filter((line) => line.msg === LOST_EVENTS_LOG).length,
      0,
      'nothing lost at stop',
    );
  });

  test('stopped while the broker is down: exits promptly and logs how many job events were dropped', async (t) => {
    broker = await startBroker();
    const subscriber = await watch(broker.url, ['inference/workers/#']);
    const worker = startWorker(
      workspace.dir,
      ['--worker-id', 'w-gone', '--tasks', 'noop', '--shutdown-grace', '2'],
      mqttEnv(),
    );
    await subscriber.waitFor(isAnnouncement('w-gone'), 'the announcement');
    await broker.stop();
    await worker.waitForLog((line) => String(line.msg).startsWith('MQTT connection lost'), HANG_GUARD_MS);
    const jobs = [];
    for (let index = 0; index < 5; index += 1) jobs.push(await workspace.addJob('noop'));
    await waitFor(
      () => completedJobIds(workspace.databasePath).length === jobs.length,
      'the jobs to complete without a broker',
      HANG_GUARD_MS,
    );

    const { code, stopMs } = await stopWorker(worker);
    t.diagnostic(`stop took ${stopMs} ms (shutdown grace 2 s)`);
    assert.equal(code, 0, worker.stderr());
    const lost = worker.logs.filter((line) => line.msg === LOST_EVENTS_LOG);
    assert.equal(lost.length, 1, `one line counts the loss; logs: ${JSON.stringify(worker.logs.slice(-5))}`);
    assert.equal(lost[0]?.dropped, 5, 'the five completed events');
  });

  test('stopped while reconnecting after a broker crash: it connects once more and clears the announcement the broker restored', async (t) => {
    broker = await startBroker({ persistence: true });
    const before = await watch(broker.url, ['inference/workers/#']);
    const worker = startWorker(workspace.dir, ['--worker-id', 'w-back', '--tasks', 'noop'], mqttEnv());
    await before.waitFor(isAnnouncement('w-back'), 'the announcement');
    await before.close();
    const saves = () =>
      (broker as Broker).logLines().filter((line) => line.includes('Saving in-memory')).length;
    const savesBefore = saves();
    await waitFor(() => saves() > savesBefore, 'an autosave holding the announcement', HANG_GUARD_MS);
    await broker.crash();
    await worker.waitForLog((line) => String(line.msg).startsWith('MQTT connection lost'), HANG_GUARD_MS);
    // Three failed attempts (0.5, 1.5 and 3.5 s after the loss): the next is 4 s away when the
    // broker comes back, so the stop finds the daemon waiting in its backoff.
    const attempts = await refuseConnections(broker.port);
    await waitFor(() => attempts.count >= 3, 'three failed reconnect attempts', HANG_GUARD_MS);
    await attempts.close();
    await broker.restart();
    const { code, stopMs } = await stopWorker(worker);
    t.diagnostic(`stop took ${stopMs} ms`);
    assert.equal(code, 0, worker.stderr());

    // The crashed broker restored the announcement from its autosave (no Will was sent): a stop
    // that did not connect again would leave it there, saying the stopped worker is ready.
    const after = await watch(broker.url, ['inference/workers/#']);
    await after.client.publishAsync('inference/workers/~end-marker', 'marker');
    await after.waitFor((message) => message.topic === 'inference/workers/~end-marker', 'the end marker');
    assert.deepEqual(after.messages.filter(isAnnouncement('w-back')), [], 'no retained announcement is left');
  });

  test('a broker that hangs (SIGSTOP) while the daemon stops: the daemon still exits, and its Will clears the announcement', async (t) => {
    broker = await startBroker();
    const subscriber = await watch(broker.url, ['inference/workers/#']);
    const worker = startWorker(
      workspace.dir,
      ['--worker-id', 'w-frozen', '--tasks', 'noop', '--shutdown-grace', '1'],
      mqttEnv(),
    );
    await subscriber.waitFor(isAnnouncement('w-frozen'), 'the announcement');
    broker.pause();
    await workspace.addJob('noop');
    await waitFor(
      () => completedJobIds(workspace.databasePath).length === 1,
      'the job to complete while the broker hangs',
      HANG_GUARD_MS,
    );

    const { code, stopMs } = await stopWorker(worker);
    t.diagnostic(`stop took ${stopMs} ms (shutdown grace 1 s)`);
    assert.equal(code, 0, worker.stderr());
    const lost = worker.logs.filter((line) => line.msg === LOST_EVENTS_LOG);
    assert.equal(lost.length, 1, 'the unacknowledged completed event is counted');
    assert.equal(lost[0]?.dropped, 1);

    // Thawed, the broker finds the daemon's connection gone without a DISCONNECT: the Will clears.
    broker.resume();
    await subscriber.waitFor(isCleared('w-frozen'), 'the Will clearing the announcement');
  });
});
