import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { decompressionBombPng, solidJpeg } from '../helpers/images.js';
import { type Broker, type Subscriber, startBroker, subscribe } from '../helpers/mosquitto.js';
import { drainBuiltIn } from '../helpers/worker-process.js';
import { errorMessageOf, useWorkspace, type Workspace } from '../helpers/workspace.js';

describe('hostile and broken image inputs (both modules, through the daemon)', () => {
  let workspace: Workspace;
  useWorkspace((created) => {
    workspace = created;
  });

  const errorOf = (jobId: string) => errorMessageOf(workspace.store, jobId, { retried: false });

  test('bombs, truncated, corrupt, empty and non-image files fail with the file and the cause; the daemon goes on', async () => {
    const photo = await solidJpeg(640, 480, '#446688');
    const add = (taskType: string, name: string, content: Buffer | string, params = {}) =>
      workspace.addJob(taskType, params, { input: { name, content } });
    const bomb = add('image_resize', 'bomb.png', decompressionBombPng(12_000, 10_000));
    const truncated = add('image_resize', 'cut.jpg', photo.subarray(0, Math.floor(photo.length / 2)));
    const text = add('image_conversion', 'notes.jpg', 'Dear team, the photos are attached.\n');
    const empty = add('image_resize', 'empty.jpg', Buffer.alloc(0));
    const png = decompressionBombPng(64, 64);
    const corruptBody = Buffer.from(png);
    corruptBody.fill(0x55, 60, png.length - 20); // valid signature and header, garbage compressed data
    const corrupt = add('image_conversion', 'damaged.png', corruptBody, { output_format: 'jpeg' });
    const good = add('image_resize', 'good.jpg', photo, { width: 64, height: 64 });
    const ids = await Promise.all([bomb, truncated, text, empty, corrupt, good]);
    await drainBuiltIn(workspace.dir, ['image_resize', 'image_conversion']);

    const [bombId, truncatedId, textId, emptyId, corruptId, goodId] = ids as [string, ...string[]];
    assert.equal(
      await errorOf(bombId),
      'Input image bomb.png is 12000×10000 = 120000000 pixels, over the limit of 100000000 ' +
        '(a possible decompression bomb; the limit is --max-input-pixels)',
    );
    const bombJob = await workspace.store.getJob(bombId);
    const bombMs = (bombJob?.completed_at ?? Number.POSITIVE_INFINITY) - (bombJob?.started_at ?? 0);
    assert.ok(bombMs < 2000, `the bomb is refused from its header, not decoded (took ${bombMs} ms)`);
    assert.match(await errorOf(truncatedId ?? ''), /^Input image cut\.jpg is truncated \(.*premature end/i);
    assert.match(
      await errorOf(textId ?? ''),
      /^Input file notes\.jpg is not an image in a format this worker can read \(/,
    );
    assert.equal(await errorOf(emptyId ?? ''), 'Input image empty.jpg is empty (0 bytes)');
    assert.match(
      await errorOf(corruptId ?? ''),
      /^Input image damaged\.png is (corrupt or cannot be decoded|truncated) \(/,
    );
    assert.equal(
      (await workspace.store.getJob(goodId ?? ''))?.status,
      'completed',
      'later jobs are unaffected',
    );
    for (const id of ids) {
      const output = path.join(workspace.storageRoot, 'jobs', id, 'output');
      const left = fs.existsSync(output) ? fs.readdirSync(output) : [];
      assert.deepEqual(left, id === goodId ? ['resized.jpg'] : [], `no partial output for ${id}`);
    }
  });

  test('the pixel limit is the operator’s: --max-input-pixels', async () => {
    const photo = await solidJpeg(640, 480, '#446688');
    const jobId = await workspace.addJob(
      'image_resize',
      {},
      { input: { name: 'photo.jpg', content: photo } },
    );
    await drainBuiltIn(workspace.dir, ['image_resize'], ['--max-input-pixels', '300000']);
    assert.equal(
      await errorOf(jobId),
      'Input image photo.jpg is 640×480 = 307200 pixels, over the limit of 300000 ' +
        '(a possible decompression bomb; the limit is --max-input-pixels)',
    );
  });

  test('paths that leave the storage root are refused; a symlink the API placed in the input folder is followed', async () => {
    const photo = await solidJpeg(64, 48, '#446688');
    const secret = path.join(workspace.dir, 'outside.jpg');
    fs.writeFileSync(secret, photo);
    const traversal = await workspace.addJob(
      'image_resize',
      {},
      { inputFiles: [{ path: 'jobs/a/input/../../../outside.jpg' }] },
    );
    const absolute = await workspace.addJob('image_conversion', {}, { inputFiles: [{ path: secret }] });
    const external = await workspace.addJob(
      'image_resize',
      { width: 32, height: 32 },
      { input: { name: 'placeholder', content: '' } },
    );
    const linkPath = path.join(workspace.storageRoot, 'jobs', external, 'input', 'external.jpg');
    fs.symlinkSync(secret, linkPath);
    await workspace.store.close();
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(workspace.databasePath);
    db.prepare('update jobs set input_files = ? where job_id = ?').run(
      JSON.stringify([{ path: `jobs/${external}/input/external.jpg`, metadata: { width: 32, height: 32 } }]),
      external,
    );
    db.close();
    await drainBuiltIn(workspace.dir, ['image_resize', 'image_conversion']);
    const { SqliteJobStore } = await import('../../worker/store/sqlite-job-store.js');
    const store = SqliteJobStore.open(workspace.databasePath, { ensureSchema: false });
    try {
      const traversalJob = await store.getJob(traversal);
      assert.equal(traversalJob?.status, 'error');
      assert.equal(
        traversalJob?.error_message,
        "Input path refused (must be relative to the storage root, without '..'): jobs/a/input/../../../outside.jpg",
      );
      assert.equal(
        (await store.getJob(absolute))?.error_message,
        `Input path refused (must be relative to the storage root, without '..'): ${secret}`,
      );
      assert.equal((await store.getJob(external))?.status, 'completed');
    } finally {
      await store.close();
    }
  });

  test('progress follows the stages: read, then transform and encode, then write', async () => {
    let broker: Broker | undefined;
    let events: Subscriber | undefined;
    try {
      broker = await startBroker();
      events = await subscribe(broker.url, ['inference/events']);
      // Large enough that encoding takes well over the 250 ms progress throttle.
      const noise = await sharp({
        create: {
          width: 3000,
          height: 2000,
          channels: 3,
          background: '#000000',
          noise: { type: 'gaussian', mean: 128, sigma: 60 },
        },
      })
        .png({ compressionLevel: 1 })
        .toBuffer();
      const jobId = await workspace.addJob(
        'image_conversion',
        { output_format: 'webp', effort: 6, quality: 90 },
        { input: { name: 'noise.png', content: noise } },
      );
      await drainBuiltIn(workspace.dir, ['image_conversion'], [], {
        BROADCAST_TYPE: 'mqtt',
        MQTT_BROKER: broker.url,
      });
      await events.waitFor((message) => message.payload.includes('"completed"'), 'the completed event');
      const progress = events.messages
        .map(
          (message) =>
            JSON.parse(message.payload) as { job_id: string; event_type: string; progress: number },
        )
        .filter((event) => event.job_id === jobId)
        .map((event) => `${event.event_type}:${event.progress}`);
      assert.deepEqual(progress, ['processing:0', 'processing:10', 'processing:85', 'completed:100']);
    } finally {
      await events?.close();
      await broker?.stop();
    }
  });
});
