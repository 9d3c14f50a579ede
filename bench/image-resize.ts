/**
 * image_resize through the daemon against sharp called in-process: a photo-like JPEG resized to
 * 800 px wide, JPEG quality 80, at a concurrency equal to the cores, each job on its own input file.
 * Printed for a 12-megapixel input (where the work dominates) and a 1-megapixel one (where the
 * per-job overhead shows most).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { BUILT_IN_MODULES, timedDrain } from './helpers/timed-drain.js';

const TARGET = { width: 800, quality: 80 };

/** Smooth noise: compresses and decodes like a photograph, unlike flat colour or white noise. */
async function photoLikeJpeg(width: number, height: number): Promise<Buffer> {
  const small = await sharp({
    create: {
      width: 400,
      height: 300,
      channels: 3,
      background: '#000',
      noise: { type: 'gaussian', mean: 128, sigma: 70 },
    },
  })
    .png()
    .toBuffer();
  return sharp(small)
    .resize(width, height, { fit: 'fill', kernel: 'cubic' })
    .sharpen()
    .jpeg({ quality: 90 })
    .toBuffer();
}

function writeInputs(root: string, image: Buffer, jobs: number): string[] {
  return Array.from({ length: jobs }, (_, index) => {
    const relative = path.posix.join('jobs', `bench-${index}`, 'input', 'photo.jpg');
    fs.mkdirSync(path.dirname(path.join(root, relative)), { recursive: true });
    fs.writeFileSync(path.join(root, relative), image);
    return relative;
  });
}

/** What a developer would write instead of the daemon: the same sharp settings in a loop. */
async function rawSharpJobsPerSecond(image: Buffer, jobs: number, concurrency: number): Promise<number> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'media-worker-bench-sharp-'));
  try {
    const inputs = writeInputs(root, image, jobs);
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let index = next++; index < inputs.length; index = next++) {
          const input = path.join(root, inputs[index] ?? '');
          await sharp(input)
            .rotate()
            .resize({ width: TARGET.width, withoutEnlargement: true })
            .jpeg({ quality: TARGET.quality })
            .toFile(path.join(path.dirname(input), 'resized.jpg'));
        }
      }),
    );
    return jobs / ((performance.now() - started) / 1000);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

async function daemonJobsPerSecond(image: Buffer, jobs: number, concurrency: number): Promise<number> {
  const result = await timedDrain({
    taskType: 'image_resize',
    modulesDir: BUILT_IN_MODULES,
    prepare: (storageRoot) =>
      writeInputs(storageRoot, image, jobs).map((inputPath) => ({
        inputPath,
        params: { width: TARGET.width, height: null, quality: TARGET.quality },
      })),
    args: ['--concurrency', String(concurrency), '--poll-interval', '0.05'],
    inspect(storageRoot) {
      const sample = path.join(storageRoot, 'jobs', 'job-0', 'output', 'resized.jpg');
      if (!fs.existsSync(sample)) throw new Error('the daemon wrote no resized.jpg');
    },
  });
  return result.jobsPerSecond;
}

export async function benchImageResize(): Promise<void> {
  const concurrency = os.availableParallelism();
  const cases = [
    {
      label: '12 MP (4000×3000)',
      width: 4000,
      height: 3000,
      jobs: Number(process.env.BENCH_IMAGE_JOBS ?? 60),
    },
    {
      label: '1 MP (1155×866)',
      width: 1155,
      height: 866,
      jobs: Number(process.env.BENCH_IMAGE_JOBS_1MP ?? 300),
    },
  ];
  console.log(
    `image_resize → 800 px wide JPEG q80, concurrency ${concurrency} (= cores), one run each; ratio = daemon / raw sharp`,
  );
  for (const { label, width, height, jobs } of cases) {
    const image = await photoLikeJpeg(width, height);
    const raw = await rawSharpJobsPerSecond(image, jobs, concurrency);
    const daemon = await daemonJobsPerSecond(image, jobs, concurrency);
    console.log(
      `  ${label.padEnd(20)} ${jobs} jobs   daemon ${daemon.toFixed(1).padStart(6)} jobs/s   ` +
        `raw sharp ${raw.toFixed(1).padStart(6)} jobs/s   ratio ${(daemon / raw).toFixed(2)} (goal ≥ 0.90)`,
    );
  }
}
