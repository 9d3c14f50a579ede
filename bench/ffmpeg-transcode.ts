/**
 * ffmpeg_render through the daemon against the same ffmpeg command run directly: a 1280×720 10 s
 * clip transcoded to 640×360 H.264 (veryfast), one job at a time (x264 uses every core itself).
 * The direct command is built by the module's own planner, so both run identical arguments, except
 * that the daemon's ffmpeg receives its filter graph on stdin once the probe is done.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveBinaries } from '../compute_modules/ffmpeg_render/binaries.js';
import { chooseVideoEncoder } from '../compute_modules/ffmpeg_render/encoders.js';
import type { FfmpegInvocation } from '../compute_modules/ffmpeg_render/fluent.js';
import { planTranscode } from '../compute_modules/ffmpeg_render/operations/transcode.js';
import { ffmpegRenderParams, type TranscodeParams } from '../compute_modules/ffmpeg_render/params.js';
import { probeMedia } from '../compute_modules/ffmpeg_render/probe.js';
import { BUILT_IN_MODULES, timedDrain } from './helpers/timed-drain.js';

const CLIP_SECONDS = 10;
const PARAMS = { operation: 'transcode', width: 640, height: 360, preset: 'veryfast' };

function makeInput(file: string): void {
  execFileSync('ffmpeg', [
    ...['-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=1280x720:rate=30:duration=${CLIP_SECONDS}`],
    ...['-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${CLIP_SECONDS}`],
    ...['-c:v', 'libx264', '-preset', 'veryfast', '-crf', '20', '-pix_fmt', 'yuv420p', '-c:a', 'aac', file],
  ]);
}

/** The argument list fluent-ffmpeg builds from an invocation: inputs, the filter graph, outputs. */
function ffmpegArguments(invocation: FfmpegInvocation): string[] {
  return [
    '-y',
    ...invocation.inputs.flatMap((input) => [...(input.options ?? []), '-i', input.path]),
    ...(typeof invocation.filterComplex === 'string' ? ['-filter_complex', invocation.filterComplex] : []),
    ...invocation.outputs.flatMap((output) => [...output.options, output.path]),
  ];
}

async function directSeconds(input: string, jobs: number): Promise<number> {
  const binaries = resolveBinaries({ ffmpegBinary: undefined, ffprobeBinary: undefined });
  const params = ffmpegRenderParams.parse(PARAMS) as TranscodeParams;
  const plan = planTranscode(params, await probeMedia(binaries, input));
  const { encoder } = await chooseVideoEncoder(binaries, 'h264', params.hardware);
  const outputDir = fs.mkdtempSync(path.join(os.tmpdir(), 'media-worker-bench-ffmpeg-'));
  try {
    const args = ['-nostdin', '-v', 'error', ...ffmpegArguments(plan.build(outputDir, encoder))];
    const started = performance.now();
    for (let index = 0; index < jobs; index += 1) execFileSync(binaries.ffmpeg, args);
    return (performance.now() - started) / 1000;
  } finally {
    fs.rmSync(outputDir, { recursive: true, force: true });
  }
}

export async function benchFfmpegTranscode(): Promise<void> {
  const jobs = Number(process.env.BENCH_FFMPEG_JOBS ?? 12);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'media-worker-bench-clip-'));
  try {
    const input = path.join(scratch, 'clip.mp4');
    makeInput(input);
    const direct = await directSeconds(input, jobs);
    const daemon = await timedDrain({
      taskType: 'ffmpeg_render',
      modulesDir: BUILT_IN_MODULES,
      prepare: (storageRoot) =>
        Array.from({ length: jobs }, (_, index) => {
          const relative = path.posix.join('jobs', `clip-${index}`, 'input', 'clip.mp4');
          fs.mkdirSync(path.dirname(path.join(storageRoot, relative)), { recursive: true });
          fs.copyFileSync(input, path.join(storageRoot, relative));
          return { inputPath: relative, params: PARAMS };
        }),
      args: ['--concurrency', '1', '--poll-interval', '0.05'],
    });
    const content = jobs * CLIP_SECONDS;
    const directFactor = content / direct;
    const daemonFactor = content / daemon.seconds;
    console.log(
      `ffmpeg_render transcode 1280×720 ${CLIP_SECONDS} s → 640×360 H.264 veryfast, ${jobs} jobs one at a time, one run`,
    );
    console.log(
      `  daemon ${daemonFactor.toFixed(1).padStart(6)}× realtime   ffmpeg directly ${directFactor.toFixed(1).padStart(6)}× realtime   ` +
        `ratio ${(daemonFactor / directFactor).toFixed(3)} (goal ≥ 0.95)`,
    );
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
