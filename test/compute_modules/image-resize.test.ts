/**
 * image_resize through the daemon, with real sharp. Each suite queues its jobs, drains them once,
 * and checks each behaviour in a test of its own.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
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
import { completedJob, errorMessageOf, useSuiteWorkspace, type Workspace } from '../helpers/workspace.js';

/** A suite's workspace and the ways its tests read the drained jobs. */
function resizeSuite() {
  const suite = {
    workspace: undefined as unknown as Workspace,
    add: (params: Record<string, unknown>, image: Buffer, name = 'photo.jpg') =>
      suite.workspace.addJob('image_resize', params, { input: { name, content: image } }),
    drain: () => drainBuiltIn(suite.workspace.dir, ['image_resize']),
    async completed(jobId: string) {
      const { job, outputs, taskOutput, outputPath } = await completedJob(suite.workspace, jobId);
      assert.equal(job.progress, 100);
      const [output] = outputs;
      assert.ok(output);
      const resized = taskOutput.resized_dimensions as number[] | undefined;
      return { job, output, resized, file: outputPath(output.filename) };
    },
    async failed(jobId: string) {
      const message = await errorMessageOf(suite.workspace.store, jobId, { retried: false });
      assert.deepEqual((await suite.workspace.store.getJob(jobId))?.output_files, []);
      return message;
    },
  };
  useSuiteWorkspace((created) => {
    suite.workspace = created;
  });
  return suite;
}

describe("image_resize: the original worker's cases", () => {
  const suite = resizeSuite();
  const jobs: Record<string, string> = {};
  let red: Buffer;
  before(async () => {
    const { workspace, add } = suite;
    red = await solidJpeg(800, 600, '#ff0000');
    jobs.aspect = await add({ width: 400, height: 400 }, red);
    jobs.exact = await add({ width: 400, height: 400, preserve_aspect: false }, red);
    jobs.defaults = await add({}, red);
    jobs.notEnlarged = await add({ width: 400, height: 400 }, await solidJpeg(100, 75, '#ff0000'));
    jobs.negative = await add({ width: -100 }, red);
    jobs.noInput = await workspace.addJob('image_resize', {}, { inputFiles: [] });
    jobs.twoInputs = await workspace.addJob(
      'image_resize',
      {},
      {
        jobId: 'two',
        inputFiles: [
          { path: workspace.addInputFile('two', 'a.jpg', red), metadata: {} },
          { path: workspace.addInputFile('two', 'b.jpg', red) },
        ],
      },
    );
    jobs.missing = await workspace.addJob(
      'image_resize',
      {},
      { jobId: 'x', inputFiles: [{ path: 'jobs/x/input/gone.jpg' }] },
    );
    // A retried job finds its previous attempt's output: it is replaced whole.
    const stale = path.join(workspace.storageRoot, 'jobs', jobs.aspect as string, 'output', 'resized.jpg');
    fs.mkdirSync(path.dirname(stale), { recursive: true });
    fs.writeFileSync(stale, 'stale half-written output');
    await suite.drain();
  });
  const job = (name: string) => jobs[name] as string;

  test('fits inside 400×400 keeping the aspect ratio, with the original result shape and metadata', async () => {
    const fitted = await suite.completed(job('aspect'));
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
  });
  test("a retried job's stale output is replaced whole, and no temporary file is left", async () => {
    const fitted = await suite.completed(job('aspect'));
    assert.deepEqual(fs.readdirSync(path.dirname(fitted.file)), ['resized.jpg']);
    assert.equal((await sharp(fitted.file).metadata()).format, 'jpeg');
  });
  test('exact size when preserve_aspect is false', async () => {
    assert.deepEqual((await suite.completed(job('exact'))).resized, [400, 400]);
  });
  test('the defaults: 256×256 at most', async () => {
    assert.deepEqual((await suite.completed(job('defaults'))).resized, [256, 192]);
  });
  test('a smaller image is not enlarged', async () => {
    assert.deepEqual((await suite.completed(job('notEnlarged'))).resized, [100, 75]);
  });
  test("the original's error messages, word for word", async () => {
    assert.equal(await suite.failed(job('negative')), 'Invalid dimensions: width=-100, height=256');
    assert.equal(await suite.failed(job('noInput')), 'image_resize requires exactly 1 input file, got 0');
    assert.equal(await suite.failed(job('twoInputs')), 'image_resize requires exactly 1 input file, got 2');
    assert.equal(await suite.failed(job('missing')), 'Input file not found: jobs/x/input/gone.jpg');
  });
});

describe('image_resize: one dimension, fit and position, enlarging, formats, background', () => {
  const suite = resizeSuite();
  const jobs: Record<string, string> = {};
  before(async () => {
    const { add } = suite;
    // 800×600: left half blue, right half white, so crops and padding can be told apart by pixel.
    const split = await solid(800, 600, '#ffffff')
      .composite([{ input: await solid(400, 600, '#0000ff').png().toBuffer(), left: 0, top: 0 }])
      .jpeg({ quality: 95 })
      .toBuffer();
    jobs.widthOnly = await add({ width: 200, height: null }, split);
    jobs.heightOnly = await add({ width: null, height: 150 }, split);
    jobs.cover = await add({ width: 100, height: 100, fit: 'cover', position: 'left' }, split);
    jobs.attention = await add({ width: 100, height: 100, fit: 'cover', position: 'attention' }, split);
    jobs.contain = await add(
      { width: 200, height: 200, fit: 'contain', background: '#00ff00', format: 'png' },
      split,
    );
    jobs.enlarged = await add({ width: 1600, height: 1600, without_enlargement: false }, split);
    jobs.webp = await add({ width: 200, height: 200, format: 'WEBP', quality: 60 }, split);
    jobs.avifLossless = await add({ width: 64, height: 64, format: 'avif', lossless: true }, split);
    const transparent = await solid(40, 40, '#ff000000', 4).png().toBuffer();
    jobs.flattened = await add({ width: 20, height: 20, background: '#00ff00' }, transparent, 'clear.png');
    jobs.keptAlpha = await add({ width: 20, height: 20, format: 'png' }, transparent, 'clear.png');
    jobs.badFit = await add({ fit: 'squash' }, split);
    jobs.bothNull = await add({ width: null, height: null }, split);
    jobs.huge = await add({ width: 100000 }, split);
    jobs.badColour = await add({ background: 'reddish' }, split);
    jobs.badLossless = await add({ lossless: true }, split);
    jobs.badEffort = await add({ format: 'webp', effort: 9 }, split);
    await suite.drain();
  });
  const job = (name: string) => jobs[name] as string;

  test('width or height alone: the other follows the aspect ratio', async () => {
    assert.deepEqual((await suite.completed(job('widthOnly'))).resized, [200, 150]);
    assert.deepEqual((await suite.completed(job('heightOnly'))).resized, [200, 150]);
  });
  test('cover with position left keeps the left side', async () => {
    const covered = await suite.completed(job('cover'));
    assert.deepEqual(covered.resized, [100, 100]);
    assert.ok(
      near(await firstPixel(covered.file, { left: 60, top: 50 }), [0, 0, 255]),
      'the crop keeps the left side (a centre crop is white there)',
    );
  });
  test('cover with position attention', async () => {
    assert.deepEqual((await suite.completed(job('attention'))).resized, [100, 100]);
  });
  test('contain pads with the background, as PNG', async () => {
    const contained = await suite.completed(job('contain'));
    assert.equal(contained.output.filename, 'resized.png');
    assert.deepEqual(contained.resized, [200, 200]);
    assert.ok(
      near(await firstPixel(contained.file, { left: 100, top: 0 }), [0, 255, 0]),
      'padding is the background',
    );
    assert.ok(near(await firstPixel(contained.file, { left: 10, top: 100 }), [0, 0, 255]));
  });
  test('enlarging on request', async () => {
    assert.deepEqual((await suite.completed(job('enlarged'))).resized, [1600, 1200]);
  });
  test('WebP at a given quality, and lossless AVIF', async () => {
    const webpOut = await suite.completed(job('webp'));
    assert.equal(webpOut.output.filename, 'resized.webp');
    assert.equal(webpOut.output.metadata.quality, 60);
    assert.equal((await sharp(webpOut.file).metadata()).format, 'webp');
    const avifOut = await suite.completed(job('avifLossless'));
    assert.equal(avifOut.output.filename, 'resized.avif');
    assert.equal((await sharp(avifOut.file).metadata()).compression, 'av1');
  });
  test('transparency: flattened onto the background for JPEG, kept for PNG', async () => {
    assert.ok(
      near(await firstPixel((await suite.completed(job('flattened'))).file), [0, 255, 0]),
      'alpha flattened onto background',
    );
    assert.equal((await sharp((await suite.completed(job('keptAlpha'))).file).metadata()).hasAlpha, true);
  });
  test('parameters no encoder can honour fail at once, naming the parameter', async () => {
    assert.match(await suite.failed(job('badFit')), /^Invalid parameters: fit: .*cover.*contain/);
    assert.equal(await suite.failed(job('bothNull')), 'Invalid dimensions: width=null, height=null');
    assert.equal(await suite.failed(job('huge')), 'Invalid dimensions: width=100000, height=256');
    assert.match(
      await suite.failed(job('badColour')),
      /^Invalid parameters: background: 'reddish' is not a colour/,
    );
    assert.equal(
      await suite.failed(job('badLossless')),
      'Invalid parameters: lossless: lossless applies to WEBP, AVIF and HEIF, not to format=JPEG',
    );
    assert.equal(
      await suite.failed(job('badEffort')),
      'Invalid parameters: effort: effort for WEBP must be from 0 to 6, got 9',
    );
  });
});

describe('image_resize: camera and print files', () => {
  const suite = resizeSuite();
  const jobs: Record<string, string> = {};
  const sRgb: [number, number, number] = [150, 100, 80];
  before(async () => {
    const { add } = suite;
    jobs.rotated = await add({ width: 20, height: null }, await exifRotatedJpeg());
    jobs.cmyk = await add({ width: 32, height: 32 }, await cmykJpeg());
    jobs.wideGamut = await add({ width: 8, height: 8, format: 'png' }, await displayP3Png(sRgb), 'p3.png');
    jobs.deep = await add({ width: 32, height: 32, format: 'png' }, await sixteenBitPng(), 'deep.png');
    jobs.gray = await add({ width: 32, height: 32 }, await grayscaleJpeg());
    const tagged = await solid(64, 48, '#ff0000')
      .jpeg()
      .withExif({ IFD0: { Copyright: 'Test Photographer' } })
      .toBuffer();
    jobs.stripped = await add({ width: 32, height: 32 }, tagged);
    jobs.kept = await add({ width: 32, height: 32, keep_metadata: true }, tagged);
    jobs.rotatedKept = await add({ width: 20, height: null, keep_metadata: true }, await exifRotatedJpeg());
    await suite.drain();
  });
  const job = (name: string) => jobs[name] as string;

  test('EXIF rotation is applied: the stored left half is on top, and no orientation is left', async () => {
    const upright = await suite.completed(job('rotated'));
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
  });
  test('CMYK becomes sRGB, and red stays red', async () => {
    const fromCmyk = await suite.completed(job('cmyk'));
    const meta = await sharp(fromCmyk.file).metadata();
    assert.deepEqual([meta.space, meta.channels], ['srgb', 3]);
    assert.ok(near(await firstPixel(fromCmyk.file), [255, 0, 0], 40), 'CMYK red is still red');
  });
  test('Display P3 numbers are converted to the sRGB colour, and the profile not carried', async () => {
    const p3 = await suite.completed(job('wideGamut'));
    assert.ok(near(await firstPixel(p3.file), sRgb, 3), 'Display P3 numbers converted to the sRGB colour');
    assert.equal(
      (await sharp(p3.file).metadata()).icc,
      undefined,
      'profile not carried (the pixels are sRGB)',
    );
  });
  test('16-bit becomes 8-bit, and grayscale stays gray', async () => {
    const deep = await suite.completed(job('deep'));
    assert.equal((await sharp(deep.file).metadata()).depth, 'uchar');
    assert.ok(near(await firstPixel(deep.file), [0x33, 0x66, 0x99], 2));
    assert.ok(near(await firstPixel((await suite.completed(job('gray'))).file), [128, 128, 128], 4));
  });
  test('metadata: stripped by default; kept on request, tagged sRGB, orientation reset', async () => {
    const strippedMeta = await sharp((await suite.completed(job('stripped'))).file).metadata();
    assert.equal(strippedMeta.exif, undefined, 'EXIF stripped by default');
    const keptMeta = await sharp((await suite.completed(job('kept'))).file).metadata();
    assert.match(keptMeta.exif?.toString('latin1') ?? '', /Test Photographer/);
    assert.ok(keptMeta.icc, 'tagged as sRGB when metadata is kept');
    const keptRotation = await sharp((await suite.completed(job('rotatedKept'))).file).metadata();
    assert.deepEqual([keptRotation.width, keptRotation.height], [20, 40]);
    assert.notEqual(keptRotation.orientation, 6, 'orientation reset: the pixels are already upright');
  });
});
