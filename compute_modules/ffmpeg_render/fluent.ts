/**
 * The one file that knows fluent-ffmpeg (unmaintained; pinned in package.json). The rest of the
 * module describes what to run as an FfmpegInvocation and reads probes as plain data, so replacing
 * fluent-ffmpeg means rewriting this file only.
 */
import type { ChildProcess } from 'node:child_process';
import ffmpeg, { type FfprobeData } from 'fluent-ffmpeg';
import type { FfmpegBinaries } from './binaries.js';
import { GRAPH_FROM_STDIN } from './deferred-graph.js';
import { type FfmpegEnd, FfmpegStderr, ffmpegFailure } from './ffmpeg-failure.js';

export interface FfmpegInvocation {
  inputs: readonly { path: string; options?: readonly string[] }[];
  /**
   * The filter graph. A promise (only for a binary that `takesGraphOnStdin`) starts ffmpeg at once,
   * with the graph to follow on its stdin: ffmpeg reads it while parsing its options, before it
   * opens any input, so loading the binary overlaps with whatever the promise waits for. If the
   * promise rejects, ffmpeg is killed before it has read any input and the run fails with that error.
   */
  filterComplex?: string | Promise<string> | undefined;
  outputs: readonly { path: string; options: readonly string[] }[];
}

export interface RunOptions {
  signal: AbortSignal;
  /** Output time reached, in seconds, as ffmpeg reports it (several times a second). */
  onTime?: (seconds: number) => void;
}

const TIME = /time=\s*(-?)(\d+):(\d+):(\d+(?:\.\d+)?)/;

export function runFfmpeg(
  binaries: FfmpegBinaries,
  invocation: FfmpegInvocation,
  options: RunOptions,
): Promise<void> {
  const command = ffmpeg().setFfmpegPath(binaries.ffmpeg).setFfprobePath(binaries.ffprobe);
  const { filterComplex } = invocation;
  // A failed deferred graph is handled once ffmpeg runs; unused if it never does.
  if (typeof filterComplex === 'object') filterComplex.catch(() => {});
  // ffmpeg takes global options anywhere; they go with the first input because fluent-ffmpeg has
  // no place for them. stdin carries the deferred graph, never keystrokes.
  const globalOptions = ['-nostdin', ...(typeof filterComplex === 'object' ? GRAPH_FROM_STDIN : [])];
  invocation.inputs.forEach((input, index) => {
    command.input(input.path);
    addVerbatim(
      (...options) => command.inputOptions(...options),
      [...(index === 0 ? globalOptions : []), ...(input.options ?? [])],
    );
  });
  // A graph given as a string reaches ffmpeg as it is (an array of filter objects would be escaped).
  if (typeof filterComplex === 'string') command.complexFilter(filterComplex);
  for (const output of invocation.outputs) {
    command.output(output.path);
    addVerbatim((...options) => command.outputOptions(...options), output.options);
  }
  const stderr = new FfmpegStderr();
  let reachedOutput = false;
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => command.kill('SIGKILL');
    options.signal.addEventListener('abort', onAbort, { once: true });
    const settle = (error?: Error) => {
      options.signal.removeEventListener('abort', onAbort);
      if (error) reject(error);
      else resolve();
    };
    // Set when the deferred graph fails: ffmpeg is killed and the run fails with this once it is gone.
    let graphError: Error | undefined;
    if (typeof filterComplex === 'object') {
      command.on('start', () => {
        // fluent-ffmpeg keeps the child it spawned here; its typings do not declare it.
        const stdin = (command as unknown as { ffmpegProc?: ChildProcess }).ffmpegProc?.stdin;
        const fail = (error: unknown) => {
          graphError = error instanceof Error ? error : new Error(String(error));
          command.kill('SIGKILL');
        };
        if (!stdin) return fail(new Error('fluent-ffmpeg no longer exposes the ffmpeg process'));
        stdin.on('error', () => {}); // ffmpeg gone first: its exit says why
        filterComplex.then((graph) => stdin.end(graph), fail);
      });
    }
    command.on('stderr', (line: string) => {
      stderr.add(line);
      const time = TIME.exec(line);
      if (time && time[1] !== '-') {
        reachedOutput = true;
        options.onTime?.(Number(time[2]) * 3600 + Number(time[3]) * 60 + Number(time[4]));
      }
    });
    command.on('error', (error: Error) => {
      settle(graphError ?? ffmpegFailure(endOf(error), stderr, reachedOutput));
    });
    command.on('end', () => settle(graphError));
    if (options.signal.aborted) settle(new Error('aborted before ffmpeg started'));
    else command.run();
  });
}

/**
 * fluent-ffmpeg's inputOptions/outputOptions split an entry holding exactly one space in two when
 * the options come as one array (`-var_stream_map "v:0,a:0 v:1,a:1"` reached ffmpeg as two
 * arguments); given as two or more arguments, they are kept as they are. A lone entry is an option
 * name (a value comes with its name), which never holds a space; one that did is refused rather
 * than split. fluent-ffmpeg also adds `-strict experimental` after `-acodec`/`-vcodec` naming an
 * experimental encoder: the module names codecs with `-c:a`/`-c:v`, which it leaves alone.
 */
function addVerbatim(add: (...options: string[]) => unknown, options: readonly string[]): void {
  if (options.length === 0) return;
  const [lone] = options;
  if (options.length === 1 && lone?.split(' ').length === 2) {
    throw new Error(`fluent-ffmpeg would split the lone ffmpeg option ${JSON.stringify(lone)} in two`);
  }
  add(...options);
}

/** How the run ended, from fluent-ffmpeg's error message (its only report of it). */
function endOf(error: Error): FfmpegEnd {
  const code = /^ffmpeg exited with code (\d+)/.exec(error.message)?.[1];
  if (code !== undefined) return { code: Number(code) };
  const signal = /^ffmpeg was killed with signal (\w+)/.exec(error.message)?.[1];
  if (signal !== undefined) return { signal };
  return { notStarted: error.message.split('\n')[0] ?? 'ffmpeg did not start' };
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
