/** What an operation hands to the module's runner: how to call ffmpeg, and what to expect of it. */
import type { VideoCodec, VideoEncoder } from './encoders.js';
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
