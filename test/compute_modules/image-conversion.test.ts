/**
 * image_conversion through the daemon, with real sharp. Each suite queues its jobs, drains them
 * once, and checks each behaviour in a test of its own.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { before, describe, test } from 'node:test';
import sharp from 'sharp';
import { animatedGif, decodeWithFfmpeg, firstPixel, near, solid, solidJpeg } from '../helpers/images.js';
import { drainBuiltIn } from '../helpers/worker-process.js';
import { completedJob, errorMessageOf, useSuiteWorkspace, type Workspace } from '../helpers/workspace.js';

/** A suite's workspace and the ways its tests read the drained jobs (each suite drains once). */
function conversionSuite() {
  const suite = {
    workspace: undefined as unknown as Workspace,
    jobs: {} as Record<string, string>,
    job: (name: string) => suite.jobs[name] as string,
    add: (params: Record<string, unknown>, image: Buffer, name = 'photo.png') =>
      suite.workspace.addJob('image_conversion', params, { input: { name, content: image } }),
    drain: () => drainBuiltIn(suite.workspace.dir, ['image_conversion']),
    async completed(jobId: string) {
      const { job, outputs, outputPath } = await completedJob(suite.workspace, jobId);
      const [output] = outputs;
      assert.ok(output);
      assert.equal(output.file_id, 'converted_image');
      const file = outputPath(output.filename);
      assert.equal(output.metadata.output_size_bytes, fs.statSync(file).size);
      return { job, output, file };
    },
    failed: (jobId: string) => errorMessageOf(suite.workspace.store, jobId, { retried: false }),
  };
  useSuiteWorkspace((created) => {
    suite.workspace = created;
  });
  return suite;
}

describe("image_conversion: the original worker's cases", () => {
  const suite = conversionSuite();
  let jpeg: Buffer;
  before(async () => {
    const { add, jobs } = suite;
    jpeg = await solidJpeg(800, 600, '#ff0000');
    jobs.toPng = await add({ output_format: 'png' }, jpeg, 'photo.jpg');
    const rgba = await solid(64, 48, '#0000ff00', 4).png().toBuffer();
    jobs.toJpeg = await add({ output_format: 'JPEG', quality: 90 }, rgba);
    jobs.invalid = await add({ output_format: 'INVALID' }, jpeg, 'photo.jpg');
    jobs.byDefault = await add({}, jpeg, 'photo.jpg');
    jobs.tiff = await add({ output_format: 'tiff' }, jpeg, 'photo.jpg');
    jobs.gif = await add({ output_format: 'Gif' }, jpeg, 'photo.jpg');
    await suite.drain();
  });

  test('JPEG → PNG, with the original result shape and metadata', async () => {
    const png = await suite.completed(suite.job('toPng'));
    assert.equal(png.output.filename, 'converted.png');
    assert.deepEqual(png.job.task_output, {
      success: true,
      original_format: 'JPEG',
      output_format: 'PNG',
      quality: 95,
    });
    assert.deepEqual(
      { ...png.output.metadata },
      {
        original_format: 'JPEG',
        output_format: 'PNG',
        quality: 95,
        original_size_bytes: jpeg.length,
        output_size_bytes: fs.statSync(png.file).size,
        dimensions: [800, 600],
      },
    );
    assert.equal((await sharp(png.file).metadata()).format, 'png');
  });
  test('RGBA PNG → JPEG at quality 90: transparency becomes white', async () => {
    const flattened = await suite.completed(suite.job('toJpeg'));
    assert.equal(flattened.output.filename, 'converted.jpg');
    assert.deepEqual(flattened.job.task_output, {
      success: true,
      original_format: 'PNG',
      output_format: 'JPEG',
      quality: 90,
    });
    assert.ok(near(await firstPixel(flattened.file), [255, 255, 255]), 'transparent pixels became white');
  });
  test("an unknown format fails with the original's message", async () => {
    assert.equal(
      await suite.failed(suite.job('invalid')),
      'Unsupported output format: INVALID. Supported: JPEG, JPG, PNG, BMP, GIF, TIFF, WEBP, AVIF, HEIF',
    );
  });
  test('PNG by default; TIFF and GIF in any case', async () => {
    assert.equal((await suite.completed(suite.job('byDefault'))).output.filename, 'converted.png');
    assert.equal((await sharp((await suite.completed(suite.job('tiff'))).file).metadata()).format, 'tiff');
    assert.equal((await sharp((await suite.completed(suite.job('gif'))).file).metadata()).format, 'gif');
  });
});

describe('image_conversion: animation, AVIF, lossless WebP, effort, HEIF', () => {
  const suite = conversionSuite();
  let pixels: Buffer;
  before(async () => {
    const { add, jobs } = suite;
    const gif = await animatedGif();
    jobs.animated = await add({ output_format: 'webp' }, gif, 'anim.gif');
    jobs.stillPng = await add({ output_format: 'png' }, gif, 'anim.gif');
    const photo = await solidJpeg(120, 80, '#3366cc');
    jobs.avif = await add({ output_format: 'AVIF', quality: 60, effort: 2 }, photo, 'photo.jpg');
    pixels = Buffer.from(Array.from({ length: 16 * 16 * 3 }, (_, index) => (index * 37) % 256));
    const noisy = await sharp(pixels, { raw: { width: 16, height: 16, channels: 3 } })
      .png()
      .toBuffer();
    jobs.lossless = await add({ output_format: 'webp', lossless: true }, noisy);
    jobs.heif = await add({ output_format: 'heif' }, photo, 'photo.jpg');
    jobs.badEffort = await add({ output_format: 'png', effort: 0 }, photo, 'photo.jpg');
    jobs.badLossless = await add({ output_format: 'jpeg', lossless: true }, photo, 'photo.jpg');
    jobs.badQuality = await add({ output_format: 'webp', quality: 101 }, photo, 'photo.jpg');
    await suite.drain();
  });

  test('an animated GIF stays animated as WebP, its frames in order', async () => {
    const webp = await suite.completed(suite.job('animated'));
    assert.equal(webp.output.filename, 'converted.webp');
    assert.equal(webp.output.metadata.frames, 3);
    assert.deepEqual(webp.output.metadata.dimensions, [30, 20]);
    const webpMeta = await sharp(webp.file, { animated: true }).metadata();
    assert.deepEqual([webpMeta.format, webpMeta.pages, webpMeta.pageHeight], ['webp', 3, 20]);
    const lastFrame = await sharp(webp.file, { page: 2 }).raw().toBuffer();
    assert.ok(near([...lastFrame.subarray(0, 3)], [0, 0, 255]), 'frames kept in order');
  });
  test('a still format takes the first frame', async () => {
    const still = await suite.completed(suite.job('stillPng'));
    assert.deepEqual(still.output.metadata.dimensions, [30, 20], 'a still format takes the first frame');
    assert.ok(near(await firstPixel(still.file), [255, 0, 0]));
  });
  test('AVIF at a given quality and effort', async () => {
    const avifOut = await suite.completed(suite.job('avif'));
    assert.equal(avifOut.output.filename, 'converted.avif');
    assert.equal(avifOut.output.metadata.quality, 60);
    const avifMeta = await sharp(avifOut.file).metadata();
    assert.deepEqual([avifMeta.format, avifMeta.compression], ['heif', 'av1']);
    assert.ok(near(await firstPixel(avifOut.file), [0x33, 0x66, 0xcc], 12));
  });
  test('lossless WebP gives back every byte', async () => {
    const losslessOut = await suite.completed(suite.job('lossless'));
    assert.equal(losslessOut.output.metadata.lossless, true);
    const roundTrip = await sharp(losslessOut.file).raw().toBuffer();
    assert.ok(roundTrip.equals(pixels), 'lossless WebP gives back every byte');
  });
  test('HEIF is written with an HEVC encoder, or refused saying so', async () => {
    // Prebuilt sharp carries libheif with AV1 only; with an HEVC encoder HEIF is written.
    const heifJob = await suite.workspace.store.getJob(suite.job('heif'));
    if (heifJob?.status === 'completed') {
      assert.equal(
        (await sharp((await suite.completed(suite.job('heif'))).file).metadata()).compression,
        'hevc',
      );
    } else {
      assert.match(
        await suite.failed(suite.job('heif')),
        /^HEIF output needs libvips built with an HEVC encoder, and this worker's sharp \(libvips [\d.]+\) has none; use AVIF/,
      );
    }
  });
  test('encoder options a format cannot take fail at once, naming the parameter', async () => {
    assert.equal(
      await suite.failed(suite.job('badEffort')),
      'Invalid parameters: effort: effort for PNG must be from 1 to 10, got 0',
    );
    assert.equal(
      await suite.failed(suite.job('badLossless')),
      'Invalid parameters: lossless: lossless applies to WEBP, AVIF and HEIF, not to output_format=JPEG',
    );
    assert.match(await suite.failed(suite.job('badQuality')), /^Invalid parameters: quality: /);
  });
});

describe('image_conversion: BMP, which sharp cannot write', () => {
  const suite = conversionSuite();

  test('BMP output, which sharp cannot write, is read back by another decoder (ffmpeg)', async () => {
    // 3×2 RGBA: top row red, bottom row fully transparent (must become white).
    const rgba = Buffer.from([
      255, 0, 0, 255, 255, 0, 0, 255, 255, 0, 0, 255, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 0,
    ]);
    const png = await sharp(rgba, { raw: { width: 3, height: 2, channels: 4 } })
      .png()
      .toBuffer();
    // 7×5 with every pixel different: catches row order, padding (7×3 = 21 bytes → 24) and BGR order.
    const gradient = Buffer.from(Array.from({ length: 7 * 5 * 3 }, (_, index) => (index * 11) % 256));
    const gradientPng = await sharp(gradient, { raw: { width: 7, height: 5, channels: 3 } })
      .png()
      .toBuffer();
    const gray = await solid(5, 4, '#808080').grayscale().png().toBuffer();
    const small = await suite.add({ output_format: 'bmp' }, png);
    const detailed = await suite.add({ output_format: 'BMP' }, gradientPng);
    const grayJob = await suite.add({ output_format: 'bmp' }, gray);
    await suite.drain();

    const smallOut = await suite.completed(small);
    assert.deepEqual(smallOut.job.task_output, {
      success: true,
      original_format: 'PNG',
      output_format: 'BMP',
      quality: 95,
    });
    const bmp = fs.readFileSync(smallOut.file);
    assert.equal(bmp.toString('ascii', 0, 2), 'BM');
    assert.equal(bmp.readUInt32LE(2), bmp.length, 'file size field');
    assert.deepEqual(
      [bmp.readInt32LE(18), bmp.readInt32LE(22), bmp.readUInt16LE(28), bmp.readUInt32LE(30)],
      [3, 2, 24, 0],
    );
    assert.deepEqual(
      [...decodeWithFfmpeg(smallOut.file)],
      [255, 0, 0, 255, 0, 0, 255, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255, 255],
      'red on top, transparent flattened onto white',
    );
    assert.ok(
      decodeWithFfmpeg((await suite.completed(detailed)).file).equals(gradient),
      'every pixel in place',
    );
    assert.deepEqual(
      [...decodeWithFfmpeg((await suite.completed(grayJob)).file).subarray(0, 3)],
      [128, 128, 128],
    );
  });
});
