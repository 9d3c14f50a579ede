import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { type Broker, HANG_GUARD_MS, type Subscriber, startBroker, subscribe } from '../helpers/mosquitto.js';
import { killLeftoverWorkers, startWorker } from '../helpers/worker-process.js';
import { createWorkspace, type Workspace, waitFor } from '../helpers/workspace.js';

type Payload = Record<string, unknown>;
const parse = (payload: string) => JSON.parse(payload) as Payload;
const isAnnouncement =
  (workerId: string, check: (payload: Payload) => boolean = () => true) =>
  (message: { topic: string; payload: string }) =>
    message.topic === `inference/workers/${workerId}` &&
    message.payload !== '' &&
    check(parse(message.payload));
const isCleared = (workerId: string) => (message: { topic: string; payload: string }) =>
  message.topic === `inference/workers/${workerId}` && message.payload === '';
/** The progress throttle's interval (worker/broadcast/progress-throttle.ts). */
const PROGRESS_INTERVAL_MS = 250;

describe('MQTT broadcasting (real Mosquitto)', () => {
  let workspace: Workspace;
  let broker: Broker;
  let subscriber: Subscriber;
  const mqttEnv = () => ({ BROADCAST_TYPE: 'mqtt', MQTT_BROKER: broker.url });

  beforeEach(async () => {
    workspace = await createWorkspace();
    broker = await startBroker();
    subscriber = await subscribe(broker.url, ['inference/workers/#', 'inference/events']);
  });
  afterEach(async () => {
    killLeftoverWorkers();
    await subscriber.close();
    await broker.stop();
    await workspace.cleanup();
  });

  test('announces its capabilities retained, and a graceful stop clears them', async () => {
    const worker = startWorker(
      workspace.dir,
      ['--worker-id', 'w-announce', '--tasks', 'noop,sleep', '--concurrency', '2'],
      mqttEnv(),
    );
    const live = await subscriber.waitFor(isAnnouncement('w-announce'), 'the announcement');
    const payload = parse(live.payload);
    assert.equal(payload.id, 'w-announce');
    assert.equal(payload.worker_id, 'w-announce');
    assert.deepEqual(payload.capabilities, ['noop', 'sleep']);
    assert.equal(payload.idle_count, 2);
    assert.equal(payload.concurrency, 2);
    assert.equal(payload.state, 'ready');
    assert.equal(payload.heartbeat_interval_s, 30);
    for (const field of ['version', 'hostname', 'session'])
      assert.equal(typeof payload[field], 'string', field);
    assert.equal(payload.pid, worker.child.pid);
    assert.ok(Math.abs(Number(payload.timestamp) - Date.now()) < 10_000, 'timestamp in ms');

    const late = await subscribe(broker.url, ['inference/workers/#']);
    const retained = await late.waitFor(isAnnouncement('w-announce'), 'the retained announcement');
    assert.equal(retained.retain, true);
    await late.close();

    worker.child.kill('SIGTERM');
    assert.equal((await worker.exited).code, 0);
    await subscriber.waitFor(isCleared('w-announce'), 'the empty retained payload');
    const after = await subscribe(broker.url, ['inference/workers/#']);
    // The broker queues a subscription's retained messages before it reads anything published after
    // the SUBACK: once this marker (same subscription) is back, a retained announcement came first.
    await after.client.publishAsync('inference/workers/~end-marker', 'marker');
    await after.waitFor((message) => message.topic === 'inference/workers/~end-marker', 'the end marker');
    assert.equal(
      after.messages.filter(isAnnouncement('w-announce')).length,
      0,
      'nothing retained after stop',
    );
    await after.close();
  });

  test('kill -9: the Last Will clears the retained entry', async () => {
    const worker = startWorker(workspace.dir, ['--worker-id', 'w-will', '--tasks', 'noop'], mqttEnv());
    await subscriber.waitFor(isAnnouncement('w-will'), 'the announcement');
    worker.child.kill('SIGKILL');
    await worker.exited;
    await subscriber.waitFor(isCleared('w-will'), 'the Will');
  });

  test('idle_count follows busy slots at concurrency 2', async () => {
    const worker = startWorker(
      workspace.dir,
      ['--worker-id', 'w-idle', '--tasks', 'sleep', '--concurrency', '2'],
      mqttEnv(),
    );
    await subscriber.waitFor(
      isAnnouncement('w-idle', (payload) => payload.idle_count === 2),
      'idle 2',
    );
    await workspace.addJob('sleep', { seconds: 0.6 });
    await workspace.addJob('sleep', { seconds: 0.6 });
    await subscriber.waitFor(
      isAnnouncement('w-idle', (payload) => payload.idle_count === 0),
      'both slots busy',
    );
    const busyAt = subscriber.messages.findIndex(
      isAnnouncement('w-idle', (payload) => payload.idle_count === 0),
    );
    await waitFor(
      () =>
        subscriber.messages
          .slice(busyAt)
          .find(isAnnouncement('w-idle', (payload) => payload.idle_count === 2)),
      'slots free again',
      HANG_GUARD_MS,
    );
    worker.child.kill('SIGTERM');
    await worker.exited;
  });

  test('job events: processing first, progress throttled and increasing, the last progress, then completed', async () => {
    const jobId = await workspace.addJob('progress', { steps: 200, step_ms: 5 });
    const worker = startWorker(
      workspace.dir,
      ['--worker-id', 'w-events', '--tasks', 'progress', '--drain'],
      mqttEnv(),
    );
    assert.equal((await worker.exited).code, 0);
    await subscriber.waitFor(
      (message) => message.topic === 'inference/events' && parse(message.payload).event_type === 'completed',
      'completed',
    );
    const events = subscriber.messages
      .filter((message) => message.topic === 'inference/events')
      .map((message) => parse(message.payload))
      .filter((event) => event.job_id === jobId);
    const processing = events.filter((event) => event.event_type === 'processing');
    const progress = processing.map((event) => Number(event.progress));
    assert.equal(progress[0], 0, 'first event is processing at 0');
    assert.deepEqual(
      [...progress].sort((a, b) => a - b),
      progress,
      'monotonic',
    );
    assert.equal(progress.at(-1), 99, 'the last progress value is published');
    // Throttled whatever the machine's speed: consecutive progress events are at least the interval
    // apart (by the daemon's own send timestamps), except the latest one, flushed just before the
    // terminal event. 2 ms of slack: a timer may fire up to a millisecond early by Date.now().
    const sentAt = processing.map((event) => Number(event.timestamp));
    for (let index = 1; index < sentAt.length - 1; index += 1) {
      const gap = (sentAt[index] as number) - (sentAt[index - 1] as number);
      assert.ok(
        gap >= PROGRESS_INTERVAL_MS - 2,
        `progress events ${index - 1} and ${index} were ${gap} ms apart: ${JSON.stringify(sentAt)}`,
      );
    }
    const completed = events.at(-1) as Payload;
    assert.equal(completed.event_type, 'completed');
    assert.equal(completed.progress, 100);
    assert.deepEqual(completed.output_files, []);
    assert.deepEqual((completed.data as Payload).output_files, []);
    assert.equal(completed.worker_id, 'w-events');
    assert.equal(completed.task_type, 'progress');
    assert.equal(completed.attempt, 1);
  });

  test('error and retrying events carry the message and the delay', async () => {
    const jobId = await workspace.addJob('fail', { message: 'flaky disk' }, { maxRetries: 1 });
    const worker = startWorker(
      workspace.dir,
      ['--tasks', 'fail', '--drain', '--retry-backoff', '0.1'],
      mqttEnv(),
    );
    assert.equal((await worker.exited).code, 0);
    const retrying = await subscriber.waitFor(
      (message) => message.topic === 'inference/events' && parse(message.payload).event_type === 'retrying',
      'retrying',
    );
    const retry = parse(retrying.payload);
    assert.equal(retry.job_id, jobId);
    assert.equal(retry.error, 'flaky disk');
    assert.equal(retry.next_attempt, 2);
    assert.ok(Number(retry.delay_ms) >= 0);
    const failed = parse(
      (
        await subscriber.waitFor(
          (message) => message.topic === 'inference/events' && parse(message.payload).event_type === 'error',
          'error',
        )
      ).payload,
    );
    assert.equal(failed.error, 'Failed after 2 attempts; last error: flaky disk');
    assert.equal((failed.data as Payload).error, failed.error);
  });

  test('two live daemons with the same worker id: one stops with "duplicate worker id", the other stays announced', async () => {
    const first = startWorker(workspace.dir, ['--worker-id', 'w-dup', '--tasks', 'noop'], mqttEnv());
    await subscriber.waitFor(isAnnouncement('w-dup'), 'the first announcement');
    const second = startWorker(workspace.dir, ['--worker-id', 'w-dup', '--tasks', 'noop'], mqttEnv());
    // The broker closes whichever connection is older each time the other connects; the daemon
    // that sees that happen repeatedly first gives up, so either may be the one that stops.
    const loser = await Promise.race([
      first.exited.then((exit) => ({ worker: first, exit })),
      second.exited.then((exit) => ({ worker: second, exit })),
    ]);
    assert.equal(loser.exit.code, 1);
    assert.match(loser.worker.stderr(), /duplicate worker id: another live daemon connected/);
    const survivor = loser.worker === first ? second : first;
    assert.equal(survivor.child.exitCode, null, 'the other daemon keeps running');
    const late = await subscribe(broker.url, ['inference/workers/#']);
    await late.waitFor(
      isAnnouncement('w-dup', (payload) => payload.pid === survivor.child.pid),
      "the survivor's retained announcement",
    );
    await late.close();
    survivor.child.kill('SIGTERM');
    assert.equal((await survivor.exited).code, 0);
  });

  test('the per-job topic carries the same events when enabled', async () => {
    const jobId = await workspace.addJob('noop');
    const perJob = await subscribe(broker.url, [`inference/events/${jobId}`]);
    const worker = startWorker(
      workspace.dir,
      ['--tasks', 'noop', '--drain', '--mqtt-events-per-job'],
      mqttEnv(),
    );
    assert.equal((await worker.exited).code, 0);
    const completed = await perJob.waitFor(
      (message) => parse(message.payload).event_type === 'completed',
      'per-job completed',
    );
    assert.equal(parse(completed.payload).job_id, jobId);
    await perJob.close();
    assert.ok(fs.existsSync(path.join(workspace.dir, 'media_store.db')));
  });

  test('a job_id that is no single topic level gets no per-job topic; its events stay on the main one', async () => {
    workspace.addRawJob('a/b', 'noop', '[]');
    workspace.addRawJob(
      'x+y',
      'noop',
      JSON.stringify([{ path: workspace.addInputFile('x+y', 'a.txt', 'x') }]),
    );
    const last = await workspace.addJob('noop');
    const all = await subscribe(broker.url, ['inference/events/#']);
    const worker = startWorker(
      workspace.dir,
      ['--tasks', 'noop', '--drain', '--mqtt-events-per-job'],
      mqttEnv(),
    );
    assert.equal((await worker.exited).code, 0);
    const onMain = (jobId: string, type: string) => (message: { topic: string; payload: string }) =>
      message.topic === 'inference/events' &&
      parse(message.payload).job_id === jobId &&
      parse(message.payload).event_type === type;
    await all.waitFor(onMain('a/b', 'error'), 'the error of a/b on the main topic');
    await all.waitFor(onMain('x+y', 'completed'), 'x+y completed on the main topic');
    // Published after the others on the same connection: once it is here, they would be too.
    await all.waitFor(
      (message) =>
        message.topic === `inference/events/${last}` && parse(message.payload).event_type === 'completed',
      'the per-job event of the last job',
    );
    const perJobTopics = new Set(all.messages.map((message) => message.topic));
    assert.equal(perJobTopics.has('inference/events/a/b'), false, 'a/b addressed another topic level');
    await all.close();
  });
});
