import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { animatedGif, decodeWithFfmpeg, firstPixel, near, solid, solidJpeg } from '../helpers/images.js';
import { drainBuiltIn } from '../helpers/worker-process.js';
import { completedJob, errorMessageOf, useWorkspace, type Workspace } from '../helpers/workspace.js';

describe('image_conversion through the daemon (real sharp)', () => {
  let workspace: Workspace;
  useWorkspace((created) => {
    workspace = created;
  });

  const addConversion = (params: Record<string, unknown>, image: Buffer, name = 'photo.png') =>
    workspace.addJob('image_conversion', params, { input: { name, content: image } });
  async function completed(jobId: string) {
    const { job, outputs, outputPath } = await completedJob(workspace, jobId);
    const [output] = outputs;
    assert.ok(output);
    assert.equal(output.file_id, 'converted_image');
    const file = outputPath(output.filename);
    assert.equal(output.metadata.output_size_bytes, fs.statSync(file).size);
    return { job, output, file };
  }
  const failed = (jobId: string) => errorMessageOf(workspace.store, jobId, { retried: false });

  test("the original's cases: JPEG → PNG, RGBA PNG → JPEG quality 90 on white, INVALID, default PNG", async () => {
    const jpeg = await solidJpeg(800, 600, '#ff0000');
    const toPng = await addConversion({ output_format: 'png' }, jpeg, 'photo.jpg');
    const rgba = await solid(64, 48, '#0000ff00', 4).png().toBuffer();
    const toJpeg = await addConversion({ output_format: 'JPEG', quality: 90 }, rgba);
    const invalid = await addConversion({ output_format: 'INVALID' }, jpeg, 'photo.jpg');
    const byDefault = await addConversion({}, jpeg, 'photo.jpg');
    const tiff = await addConversion({ output_format: 'tiff' }, jpeg, 'photo.jpg');
    const gif = await addConversion({ output_format: 'Gif' }, jpeg, 'photo.jpg');
    await drainBuiltIn(workspace.dir, ['image_conversion']);

    const png = await completed(toPng);
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

    const flattened = await completed(toJpeg);
    assert.equal(flattened.output.filename, 'converted.jpg');
    assert.deepEqual(flattened.job.task_output, {
      success: true,
      original_format: 'PNG',
      output_format: 'JPEG',
      quality: 90,
    });
    assert.ok(near(await firstPixel(flattened.file), [255, 255, 255]), 'transparent pixels became white');

    assert.equal(
      await failed(invalid),
      'Unsupported output format: INVALID. Supported: JPEG, JPG, PNG, BMP, GIF, TIFF, WEBP, AVIF, HEIF',
    );
    assert.equal((await completed(byDefault)).output.filename, 'converted.png');
    assert.equal((await sharp((await completed(tiff)).file).metadata()).format, 'tiff');
    assert.equal((await sharp((await completed(gif)).file).metadata()).format, 'gif');
  });

  test('animated GIF → animated WebP, AVIF, lossless WebP, effort, HEIF as far as this sharp can', async () => {
    const gif = await animatedGif();
    const animated = await addConversion({ output_format: 'webp' }, gif, 'anim.gif');
    const stillPng = await addConversion({ output_format: 'png' }, gif, 'anim.gif');
    const photo = await solidJpeg(120, 80, '#3366cc');
    const avif = await addConversion({ output_format: 'AVIF', quality: 60, effort: 2 }, photo, 'photo.jpg');
    const pixels = Buffer.from(Array.from({ length: 16 * 16 * 3 }, (_, index) => (index * 37) % 256));
    const noisy = await sharp(pixels, { raw: { width: 16, height: 16, channels: 3 } })
      .png()
      .toBuffer();
    const lossless = await addConversion({ output_format: 'webp', lossless: true }, noisy);
    const heif = await addConversion({ output_format: 'heif' }, photo, 'photo.jpg');
    const badEffort = await addConversion({ output_format: 'png', effort: 0 }, photo, 'photo.jpg');
    const badLossless = await addConversion({ output_format: 'jpeg', lossless: true }, photo, 'photo.jpg');
    const badQuality = await addConversion({ output_format: 'webp', quality: 101 }, photo, 'photo.jpg');
    await drainBuiltIn(workspace.dir, ['image_conversion']);

    const webp = await completed(animated);
    assert.equal(webp.output.filename, 'converted.webp');
    assert.equal(webp.output.metadata.frames, 3);
    assert.deepEqual(webp.output.metadata.dimensions, [30, 20]);
    const webpMeta = await sharp(webp.file, { animated: true }).metadata();
    assert.deepEqual([webpMeta.format, webpMeta.pages, webpMeta.pageHeight], ['webp', 3, 20]);
    const lastFrame = await sharp(webp.file, { page: 2 }).raw().toBuffer();
    assert.ok(near([...lastFrame.subarray(0, 3)], [0, 0, 255]), 'frames kept in order');
    const still = await completed(stillPng);
    assert.deepEqual(still.output.metadata.dimensions, [30, 20], 'a still format takes the first frame');
    assert.ok(near(await firstPixel(still.file), [255, 0, 0]));

    const avifOut = await completed(avif);
    assert.equal(avifOut.output.filename, 'converted.avif');
    assert.equal(avifOut.output.metadata.quality, 60);
    const avifMeta = await sharp(avifOut.file).metadata();
    assert.deepEqual([avifMeta.format, avifMeta.compression], ['heif', 'av1']);
    assert.ok(near(await firstPixel(avifOut.file), [0x33, 0x66, 0xcc], 12));

    const losslessOut = await completed(lossless);
    assert.equal(losslessOut.output.metadata.lossless, true);
    const roundTrip = await sharp(losslessOut.file).raw().toBuffer();
    assert.ok(roundTrip.equals(pixels), 'lossless WebP gives back every byte');

    // Prebuilt sharp carries libheif with AV1 only; with an HEVC encoder HEIF is written.
    const heifJob = await workspace.store.getJob(heif);
    if (heifJob?.status === 'completed') {
      assert.equal((await sharp((await completed(heif)).file).metadata()).compression, 'hevc');
    } else {
      assert.match(
        await failed(heif),
        /^HEIF output needs libvips built with an HEVC encoder, and this worker's sharp \(libvips [\d.]+\) has none; use AVIF/,
      );
    }
    assert.equal(
      await failed(badEffort),
      'Invalid parameters: effort: effort for PNG must be from 1 to 10, got 0',
    );
    assert.equal(
      await failed(badLossless),
      'Invalid parameters: lossless: lossless applies to WEBP, AVIF and HEIF, not to output_format=JPEG',
    );
    assert.match(await failed(badQuality), /^Invalid parameters: quality: /);
  });

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
    const small = await addConversion({ output_format: 'bmp' }, png);
    const detailed = await addConversion({ output_format: 'BMP' }, gradientPng);
    const grayJob = await addConversion({ output_format: 'bmp' }, gray);
    await drainBuiltIn(workspace.dir, ['image_conversion']);

    const smallOut = await completed(small);
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
    assert.ok(decodeWithFfmpeg((await completed(detailed)).file).equals(gradient), 'every pixel in place');
    assert.deepEqual([...decodeWithFfmpeg((await completed(grayJob)).file).subarray(0, 3)], [128, 128, 128]);
  });
});
