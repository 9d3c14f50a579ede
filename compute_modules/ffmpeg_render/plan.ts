/** What an operation hands to the module's runner: how to call ffmpeg, and what to expect of it. */
import type { VideoCodec } from './codecs.js';
import type { VideoEncoder } from './encoders.js';
import type { FfmpegInvocation } from './fluent.js';

export interface RenderPlan {
  /** Seconds of output ffmpeg will write: progress is its reported time against this. */
  expectedDurationS: number;
  /** The codec video is encoded with; absent when the output is an image (thumbnails). */
  videoCodec?: VideoCodec;
  /** The file task_output describes, relative to the output folder. */
  mainOutput: string;
  /** What the main output holds, as the plan asked ffmpeg for it. */
  produces: {
    width: number;
    height: number;
    /** Video and audio codecs of a video output ('none' = no audio). */
    codecs?: { video: string; audio: string };
    /** Image format of an image output (thumbnails). */
    format?: string;
  };
  /** The ffmpeg call writing into `stagingDir`, with `encoder` when the plan encodes video. */
  build(stagingDir: string, encoder: VideoEncoder | undefined): FfmpegInvocation;
  /** Fields of task_output only this operation knows (variants, frame times…). */
  describe?(files: readonly string[]): Record<string, unknown>;
}

/**
 * An operation whose ffmpeg call depends on the probed inputs only through its filter graph
 * (transcode) starts ffmpeg while the inputs are probed. Both programs spend their first ≈65 ms
 * loading (a distribution build links some 200 shared libraries), so run side by side the probe
 * costs nothing; ffmpeg waits for the graph before it opens any input, and a failed probe or plan
 * kills it before it has encoded anything.
 */
export interface EarlyStart {
  /** Known from the parameters, so the encoder is chosen before the probe. */
  videoCodec: VideoCodec;
  /** The plan's own call, started with the plan still to come. */
  build(stagingDir: string, encoder: VideoEncoder | undefined, plan: Promise<RenderPlan>): FfmpegInvocation;
}

/** The filter graph of the plan's own call, for an early start to receive once the plan is made. */
export async function filterGraphOf(
  plan: Promise<RenderPlan>,
  stagingDir: string,
  encoder: VideoEncoder | undefined,
): Promise<string> {
  const { filterComplex } = (await plan).build(stagingDir, encoder);
  if (typeof filterComplex !== 'string') throw new Error('a plan started early must build its own graph');
  return filterComplex;
}
