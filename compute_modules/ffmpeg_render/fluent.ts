/**
 * The one file that knows fluent-ffmpeg (unmaintained; pinned in package.json). The rest of the
 * module describes what to run as an FfmpegInvocation and reads probes as plain data, so replacing
 * fluent-ffmpeg means rewriting this file only.
 */
import ffmpeg, { type FfprobeData } from 'fluent-ffmpeg';
import type { FfmpegBinaries } from './binaries.js';

export interface FfmpegInvocation {
  inputs: readonly { path: string; options?: readonly string[] }[];
  filterComplex?: string | undefined;
  outputs: readonly { path: string; options: readonly string[] }[];
}

export interface RunOptions {
  signal: AbortSignal;
  /** Output time reached, in seconds, as ffmpeg reports it (several times a second). */
  onTime?: (seconds: number) => void;
}

/** ffmpeg failed: its exit, and the last lines of its stderr (where it says why). */
export class FfmpegFailed extends Error {
  override readonly name = 'FfmpegFailed';
  constructor(
    message: string,
    readonly stderrTail: string,
  ) {
    super(message);
  }
}

const TIME = /time=\s*(-?)(\d+):(\d+):(\d+(?:\.\d+)?)/;

export function runFfmpeg(
  binaries: FfmpegBinaries,
  invocation: FfmpegInvocation,
  options: RunOptions,
): Promise<void> {
  const command = ffmpeg().setFfmpegPath(binaries.ffmpeg).setFfprobePath(binaries.ffprobe);
  for (const input of invocation.inputs) command.input(input.path).inputOptions([...(input.options ?? [])]);
  if (invocation.filterComplex !== undefined) command.complexFilter(invocation.filterComplex);
  for (const output of invocation.outputs) command.output(output.path).outputOptions([...output.options]);
  const stderrLines: string[] = [];
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => command.kill('SIGKILL');
    options.signal.addEventListener('abort', onAbort, { once: true });
    const settle = (error?: Error) => {
      options.signal.removeEventListener('abort', onAbort);
      if (error) reject(error);
      else resolve();
    };
    command.on('stderr', (line: string) => {
      stderrLines.push(line);
      if (stderrLines.length > 40) stderrLines.shift();
      const time = TIME.exec(line);
      if (time && time[1] !== '-') {
        options.onTime?.(Number(time[2]) * 3600 + Number(time[3]) * 60 + Number(time[4]));
      }
    });
    command.on('error', (error: Error) => {
      const tail = stderrLines
        .filter((line) => !TIME.test(line))
        .slice(-8)
        .join('\n');
      settle(new FfmpegFailed(error.message.split('\n')[0] ?? 'ffmpeg failed', tail));
    });
    command.on('end', () => settle());
    if (options.signal.aborted) settle(new Error('aborted before ffmpeg started'));
    else command.run();
  });
}

/**
 * fluent-ffmpeg asks the binary for its formats and encoders before a process's first command and
 * caches the lists; asking here at runner start keeps that (≈140 ms) off the first job.
 */
export function listVideoEncoders(binaries: FfmpegBinaries): Promise<Set<string>> {
  const command = ffmpeg().setFfmpegPath(binaries.ffmpeg);
  return new Promise((resolve, reject) => {
    command.availableFormats((formatsError: unknown) => {
      if (formatsError) return reject(formatsError);
      command.availableEncoders((error: unknown, encoders: Record<string, { type?: string }>) => {
        if (error) return reject(error);
        resolve(new Set(Object.keys(encoders).filter((name) => encoders[name]?.type === 'video')));
      });
    });
  });
}

export function probeFile(binaries: FfmpegBinaries, file: string): Promise<FfprobeData> {
  return new Promise((resolve, reject) => {
    ffmpeg(file)
      .setFfprobePath(binaries.ffprobe)
      .ffprobe((error: unknown, data: FfprobeData) => (error ? reject(error) : resolve(data)));
  });
}
