import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import {
  cmykJpeg,
  displayP3Png,
  exifRotatedJpeg,
  firstPixel,
  grayscaleJpeg,
  near,
  sixteenBitPng,
  solid,
  solidJpeg,
} from '../helpers/images.js';
import { drainBuiltIn } from '../helpers/worker-process.js';
import { completedJob, errorMessageOf, useWorkspace, type Workspace } from '../helpers/workspace.js';

describe('image_resize through the daemon (real sharp)', () => {
  let workspace: Workspace;
  useWorkspace((created) => {
    workspace = created;
  });

  const addResize = (params: Record<string, unknown>, image: Buffer, name = 'photo.jpg') =>
    workspace.addJob('image_resize', params, { input: { name, content: image } });
  const outputPath = (jobId: string, filename: string) =>
    path.join(workspace.storageRoot, 'jobs', jobId, 'output', filename);
  async function completed(jobId: string) {
    const { job, outputs, taskOutput, outputPath } = await completedJob(workspace, jobId);
    assert.equal(job.progress, 100);
    const [output] = outputs;
    assert.ok(output);
    const resized = taskOutput.resized_dimensions as number[] | undefined;
    return { job, output, resized, file: outputPath(output.filename) };
  }
  async function failed(jobId: string) {
    const message = await errorMessageOf(workspace.store, jobId, { retried: false });
    assert.deepEqual((await workspace.store.getJob(jobId))?.output_files, []);
    return message;
  }

  test("the original's cases: fit inside without enlarging, exact size, its error messages", async () => {
    const red = await solidJpeg(800, 600, '#ff0000');
    const aspect = await addResize({ width: 400, height: 400 }, red);
    const exact = await addResize({ width: 400, height: 400, preserve_aspect: false }, red);
    const defaults = await addResize({}, red);
    const notEnlarged = await addResize({ width: 400, height: 400 }, await solidJpeg(100, 75, '#ff0000'));
    const negative = await addResize({ width: -100 }, red);
    const noInput = await workspace.addJob('image_resize', {}, { inputFiles: [] });
    const twoInputs = await workspace.addJob(
      'image_resize',
      {},
      {
        inputFiles: [
          { path: workspace.addInputFile('two', 'a.jpg', red), metadata: {} },
          { path: workspace.addInputFile('two', 'b.jpg', red) },
        ],
      },
    );
    const missing = await workspace.addJob(
      'image_resize',
      {},
      { inputFiles: [{ path: 'jobs/x/input/gone.jpg' }] },
    );
    // A retried job finds its previous attempt's output: it is replaced whole.
    fs.mkdirSync(path.dirname(outputPath(aspect, 'resized.jpg')), { recursive: true });
    fs.writeFileSync(outputPath(aspect, 'resized.jpg'), 'stale half-written output');
    await drainBuiltIn(workspace.dir, ['image_resize']);

    const fitted = await completed(aspect);
    assert.deepEqual(fitted.job.task_output, {
      success: true,
      original_dimensions: [800, 600],
      resized_dimensions: [400, 300],
    });
    assert.equal(fitted.output.file_id, 'resized_image');
    assert.equal(fitted.output.filename, 'resized.jpg');
    const written = await sharp(fitted.file).metadata();
    assert.deepEqual([written.format, written.width, written.height], ['jpeg', 400, 300]);
    assert.deepEqual(
      { ...fitted.output.metadata },
      {
        original_width: 800,
        original_height: 600,
        resized_width: 400,
        resized_height: 300,
        original_size_bytes: red.length,
        output_size_bytes: fs.statSync(fitted.file).size,
        preserve_aspect: true,
        fit: 'inside',
        format: 'JPEG',
        quality: 90,
      },
    );
    assert.ok(near(await firstPixel(fitted.file), [255, 0, 0]));
    assert.deepEqual(
      fs.readdirSync(path.dirname(fitted.file)),
      ['resized.jpg'],
      'no temporary file is left behind',
    );

    assert.deepEqual((await completed(exact)).resized, [400, 400]);
    assert.deepEqual((await completed(defaults)).resized, [256, 192]);
    assert.deepEqual((await completed(notEnlarged)).resized, [100, 75]);
    assert.equal(await failed(negative), 'Invalid dimensions: width=-100, height=256');
    assert.equal(await failed(noInput), 'image_resize requires exactly 1 input file, got 0');
    assert.equal(await failed(twoInputs), 'image_resize requires exactly 1 input file, got 2');
    assert.equal(await failed(missing), 'Input file not found: jobs/x/input/gone.jpg');
  });

  test('one dimension alone, fit and position, enlarging on request, output format and quality, background', async () => {
    // 800×600: left half blue, right half white, so crops and padding can be told apart by pixel.
    const split = await solid(800, 600, '#ffffff')
      .composite([{ input: await solid(400, 600, '#0000ff').png().toBuffer(), left: 0, top: 0 }])
      .jpeg({ quality: 95 })
      .toBuffer();
    const widthOnly = await addResize({ width: 200, height: null }, split);
    const heightOnly = await addResize({ width: null, height: 150 }, split);
    const cover = await addResize({ width: 100, height: 100, fit: 'cover', position: 'left' }, split);
    const attention = await addResize(
      { width: 100, height: 100, fit: 'cover', position: 'attention' },
      split,
    );
    const contain = await addResize(
      { width: 200, height: 200, fit: 'contain', background: '#00ff00', format: 'png' },
      split,
    );
    const enlarged = await addResize({ width: 1600, height: 1600, without_enlargement: false }, split);
    const webp = await addResize({ width: 200, height: 200, format: 'WEBP', quality: 60 }, split);
    const avifLossless = await addResize({ width: 64, height: 64, format: 'avif', lossless: true }, split);
    const transparent = await solid(40, 40, '#ff000000', 4).png().toBuffer();
    const flattened = await addResize(
      { width: 20, height: 20, background: '#00ff00' },
      transparent,
      'clear.png',
    );
    const keptAlpha = await addResize({ width: 20, height: 20, format: 'png' }, transparent, 'clear.png');
    const badFit = await addResize({ fit: 'squash' }, split);
    const bothNull = await addResize({ width: null, height: null }, split);
    const huge = await addResize({ width: 100000 }, split);
    const badColour = await addResize({ background: 'reddish' }, split);
    const badLossless = await addResize({ lossless: true }, split);
    const badEffort = await addResize({ format: 'webp', effort: 9 }, split);
    await drainBuiltIn(workspace.dir, ['image_resize']);

    assert.deepEqual((await completed(widthOnly)).resized, [200, 150]);
    assert.deepEqual((await completed(heightOnly)).resized, [200, 150]);
    const covered = await completed(cover);
    assert.deepEqual(covered.resized, [100, 100]);
    assert.ok(
      near(await firstPixel(covered.file, { left: 60, top: 50 }), [0, 0, 255]),
      'the crop keeps the left side (a centre crop is white there)',
    );
    assert.deepEqual((await completed(attention)).resized, [100, 100]);
    const contained = await completed(contain);
    assert.equal(contained.output.filename, 'resized.png');
    assert.deepEqual(contained.resized, [200, 200]);
    assert.ok(
      near(await firstPixel(contained.file, { left: 100, top: 0 }), [0, 255, 0]),
      'padding is the background',
    );
    assert.ok(near(await firstPixel(contained.file, { left: 10, top: 100 }), [0, 0, 255]));
    assert.deepEqual((await completed(enlarged)).resized, [1600, 1200]);
    const webpOut = await completed(webp);
    assert.equal(webpOut.output.filename, 'resized.webp');
    assert.equal(webpOut.output.metadata.quality, 60);
    assert.equal((await sharp(webpOut.file).metadata()).format, 'webp');
    const avifOut = await completed(avifLossless);
    assert.equal(avifOut.output.filename, 'resized.avif');
    assert.equal((await sharp(avifOut.file).metadata()).compression, 'av1');
    assert.ok(
      near(await firstPixel((await completed(flattened)).file), [0, 255, 0]),
      'alpha flattened onto background',
    );
    const alphaKept = await sharp((await completed(keptAlpha)).file).metadata();
    assert.equal(alphaKept.hasAlpha, true);

    assert.match(await failed(badFit), /^Invalid parameters: fit: .*cover.*contain/);
    assert.equal(await failed(bothNull), 'Invalid dimensions: width=null, height=null');
    assert.equal(await failed(huge), 'Invalid dimensions: width=100000, height=256');
    assert.match(await failed(badColour), /^Invalid parameters: background: 'reddish' is not a colour/);
    assert.equal(
      await failed(badLossless),
      'Invalid parameters: lossless: lossless applies to WEBP, AVIF and HEIF, not to format=JPEG',
    );
    assert.equal(
      await failed(badEffort),
      'Invalid parameters: effort: effort for WEBP must be from 0 to 6, got 9',
    );
  });

  test('camera and print files: EXIF rotation applied, CMYK and wide-gamut profiles to sRGB, 16-bit, grayscale, metadata', async () => {
    const rotated = await addResize({ width: 20, height: null }, await exifRotatedJpeg());
    const cmyk = await addResize({ width: 32, height: 32 }, await cmykJpeg());
    const sRgb: [number, number, number] = [150, 100, 80];
    const wideGamut = await addResize(
      { width: 8, height: 8, format: 'png' },
      await displayP3Png(sRgb),
      'p3.png',
    );
    const deep = await addResize({ width: 32, height: 32, format: 'png' }, await sixteenBitPng(), 'deep.png');
    const gray = await addResize({ width: 32, height: 32 }, await grayscaleJpeg());
    const tagged = await solid(64, 48, '#ff0000')
      .jpeg()
      .withExif({ IFD0: { Copyright: 'Test Photographer' } })
      .toBuffer();
    const stripped = await addResize({ width: 32, height: 32 }, tagged);
    const kept = await addResize({ width: 32, height: 32, keep_metadata: true }, tagged);
    const rotatedKept = await addResize(
      { width: 20, height: null, keep_metadata: true },
      await exifRotatedJpeg(),
    );
    await drainBuiltIn(workspace.dir, ['image_resize']);

    const upright = await completed(rotated);
    assert.deepEqual(upright.job.task_output, {
      success: true,
      original_dimensions: [40, 80],
      resized_dimensions: [20, 40],
    });
    assert.ok(
      near(await firstPixel(upright.file, { left: 10, top: 5 }), [255, 0, 0]),
      'stored left half is now on top',
    );
    assert.ok(near(await firstPixel(upright.file, { left: 10, top: 35 }), [0, 0, 255]));
    assert.equal((await sharp(upright.file).metadata()).orientation, undefined);

    const fromCmyk = await completed(cmyk);
    const cmykMeta = await sharp(fromCmyk.file).metadata();
    assert.deepEqual([cmykMeta.space, cmykMeta.channels], ['srgb', 3]);
    assert.ok(near(await firstPixel(fromCmyk.file), [255, 0, 0], 40), 'CMYK red is still red');

    const p3 = await completed(wideGamut);
    assert.ok(near(await firstPixel(p3.file), sRgb, 3), 'Display P3 numbers converted to the sRGB colour');
    assert.equal(
      (await sharp(p3.file).metadata()).icc,
      undefined,
      'profile not carried (the pixels are sRGB)',
    );

    const deepOut = await sharp((await completed(deep)).file).metadata();
    assert.equal(deepOut.depth, 'uchar');
    assert.ok(near(await firstPixel((await completed(deep)).file), [0x33, 0x66, 0x99], 2));
    assert.ok(near(await firstPixel((await completed(gray)).file), [128, 128, 128], 4));

    const strippedMeta = await sharp((await completed(stripped)).file).metadata();
    assert.equal(strippedMeta.exif, undefined, 'EXIF stripped by default');
    const keptMeta = await sharp((await completed(kept)).file).metadata();
    assert.match(keptMeta.exif?.toString('latin1') ?? '', /Test Photographer/);
    assert.ok(keptMeta.icc, 'tagged as sRGB when metadata is kept');
    const keptRotation = await sharp((await completed(rotatedKept)).file).metadata();
    assert.deepEqual([keptRotation.width, keptRotation.height], [20, 40]);
    assert.notEqual(keptRotation.orientation, 6, 'orientation reset: the pixels are already upright');
  });
});
