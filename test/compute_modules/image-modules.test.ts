import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { CLI, startWorker } from '../helpers/worker-process.js';
import { useWorkspace, type Workspace } from '../helpers/workspace.js';

const BUILT_IN_MODULES = path.join(path.dirname(CLI), '../../compute_modules');

describe('image modules through the daemon (real sharp)', () => {
  let workspace: Workspace;
  useWorkspace((created) => {
    workspace = created;
  });

  const addImageJob = (
    taskType: string,
    params: Record<string, unknown>,
    image: Buffer,
    name = 'photo.png',
  ) => workspace.addJob(taskType, params, { input: { name, content: image } });

  /** Runs the built-in module until the queue is empty. */
  async function runBuiltIn(taskType: string): Promise<void> {
    const worker = startWorker(workspace.dir, [
      '--modules-dir',
      BUILT_IN_MODULES,
      '--tasks',
      taskType,
      '--drain',
    ]);
    assert.equal((await worker.exited).code, 0, worker.stderr());
  }

  test('image_resize keeps the original contract: resized.jpg, fit inside without enlarging', async () => {
    const png = await sharp({ create: { width: 800, height: 600, channels: 4, background: '#33669980' } })
      .png()
      .toBuffer();
    const jobId = await addImageJob('image_resize', { width: 200, height: 200 }, png);
    const corrupt = await addImageJob('image_resize', {}, Buffer.from('not an image at all'), 'bad.png');
    const badSize = await addImageJob('image_resize', { width: -5 }, png);
    await runBuiltIn('image_resize');

    const job = await workspace.store.getJob(jobId);
    assert.equal(job?.status, 'completed', job?.error_message ?? '');
    assert.deepEqual(job?.task_output, {
      success: true,
      original_dimensions: [800, 600],
      resized_dimensions: [200, 150],
    });
    const [output] = job?.output_files as {
      file_id: string;
      filename: string;
      metadata: Record<string, unknown>;
    }[];
    assert.equal(output?.file_id, 'resized_image');
    assert.equal(output?.filename, 'resized.jpg');
    const outputPath = path.join(workspace.storageRoot, 'jobs', jobId, 'output', 'resized.jpg');
    const written = await sharp(outputPath).metadata();
    assert.equal(written.format, 'jpeg');
    assert.equal(written.width, 200);
    assert.equal(written.height, 150);
    assert.equal(output?.metadata.output_size_bytes, fs.statSync(outputPath).size);

    const corruptJob = await workspace.store.getJob(corrupt);
    assert.equal(corruptJob?.status, 'error');
    assert.equal(corruptJob?.retry_count, 0, 'a corrupt input is not retried');
    assert.match(corruptJob?.error_message ?? '', /Cannot decode input image bad.png/);
    assert.match(
      (await workspace.store.getJob(badSize))?.error_message ?? '',
      /^Invalid parameters: width: /,
    );
  });

  test('image_conversion writes converted.<ext> with the requested format', async () => {
    const png = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#ff0000' } })
      .png()
      .toBuffer();
    const jobId = await addImageJob('image_conversion', { output_format: 'jpeg', quality: 80 }, png);
    const unsupported = await addImageJob('image_conversion', { output_format: 'PSD' }, png);
    await runBuiltIn('image_conversion');
    const job = await workspace.store.getJob(jobId);
    assert.equal(job?.status, 'completed', job?.error_message ?? '');
    assert.deepEqual(job?.task_output, {
      success: true,
      original_format: 'PNG',
      output_format: 'JPEG',
      quality: 80,
    });
    const written = await sharp(
      path.join(workspace.storageRoot, 'jobs', jobId, 'output', 'converted.jpg'),
    ).metadata();
    assert.equal(written.format, 'jpeg');
    assert.match(
      (await workspace.store.getJob(unsupported))?.error_message ?? '',
      /Unsupported output format: PSD\. Supported: /,
    );
  });
  test('image_conversion writes BMP (24-bit, bottom-up, alpha flattened onto white), which sharp cannot', async () => {
    // 3×2 RGBA: top row red, bottom row fully transparent (must become white).
    const pixels = Buffer.from([
      255, 0, 0, 255, 255, 0, 0, 255, 255, 0, 0, 255, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 0,
    ]);
    const png = await sharp(pixels, { raw: { width: 3, height: 2, channels: 4 } })
      .png()
      .toBuffer();
    const gray = await sharp({ create: { width: 5, height: 4, channels: 3, background: '#808080' } })
      .grayscale()
      .png()
      .toBuffer();
    const jobId = await addImageJob('image_conversion', { output_format: 'bmp' }, png);
    const grayJob = await addImageJob('image_conversion', { output_format: 'BMP' }, gray);
    await runBuiltIn('image_conversion');

    const job = await workspace.store.getJob(jobId);
    assert.equal(job?.status, 'completed', job?.error_message ?? '');
    assert.deepEqual(job?.task_output, {
      success: true,
      original_format: 'PNG',
      output_format: 'BMP',
      quality: 95,
    });
    const bmp = fs.readFileSync(path.join(workspace.storageRoot, 'jobs', jobId, 'output', 'converted.bmp'));
    assert.equal(bmp.toString('ascii', 0, 2), 'BM');
    assert.equal(bmp.readUInt32LE(2), bmp.length, 'file size field');
    assert.deepEqual(
      [bmp.readInt32LE(18), bmp.readInt32LE(22), bmp.readUInt16LE(28), bmp.readUInt32LE(30)],
      [3, 2, 24, 0],
    );
    const offset = bmp.readUInt32LE(10);
    const rowBytes = 12; // 3 pixels × 3 bytes = 9, padded to 12
    assert.equal(bmp.length, offset + rowBytes * 2);
    const pixel = (x: number, rowFromTop: number) => {
      const at = offset + (1 - rowFromTop) * rowBytes + x * 3;
      return [bmp[at + 2], bmp[at + 1], bmp[at]]; // stored BGR
    };
    assert.deepEqual(pixel(0, 0), [255, 0, 0], 'top row red');
    assert.deepEqual(pixel(2, 1), [255, 255, 255], 'transparent became white');

    const grayBmp = fs.readFileSync(
      path.join(workspace.storageRoot, 'jobs', grayJob, 'output', 'converted.bmp'),
    );
    assert.deepEqual(
      [grayBmp.readInt32LE(18), grayBmp.readInt32LE(22), grayBmp.readUInt16LE(28)],
      [5, 4, 24],
    );
    const grayAt = grayBmp.readUInt32LE(10);
    assert.deepEqual([grayBmp[grayAt], grayBmp[grayAt + 1], grayBmp[grayAt + 2]], [128, 128, 128]);
  });
});
