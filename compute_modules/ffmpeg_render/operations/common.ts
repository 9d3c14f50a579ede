/** Pieces every video-writing operation shares: output size, audio and container options. */
import { InvalidParametersError } from '../../../worker/errors.js';
import type { Preset, VideoCodec } from '../codecs.js';
import type { VideoEncoder } from '../encoders.js';
import type { Container } from '../params.js';

const even = (value: number) => Math.max(2, 2 * Math.round(value / 2));

/**
 * The output size for a requested width and/or height: the aspect ratio is kept, both sides are
 * even (4:2:0 video needs it; images pass `even: false`), and the input is never enlarged unless
 * `allowUpscale`.
 */
export function fitSize(
  source: { width: number; height: number },
  requested: { width?: number | undefined; height?: number | undefined },
  allowUpscale: boolean,
  { even: makeEven = true } = {},
): { width: number; height: number } {
  let scale = 1;
  if (requested.width !== undefined && requested.height !== undefined) {
    scale = Math.min(requested.width / source.width, requested.height / source.height);
  } else if (requested.width !== undefined) scale = requested.width / source.width;
  else if (requested.height !== undefined) scale = requested.height / source.height;
  if (!allowUpscale) scale = Math.min(scale, 1);
  const round = makeEven ? even : (value: number) => Math.max(1, Math.round(value));
  return { width: round(source.width * scale), height: round(source.height * scale) };
}

export const defaultVideoCodec = (container: Container): VideoCodec =>
  container === 'webm' ? 'vp9' : 'h264';

export function audioOptions(
  codec: 'aac' | 'opus' | 'mp3' | 'copy' | 'none' | undefined,
  container: Container,
  bitrateKbps: number,
  inputHasAudio: boolean,
): { codec: string; options: string[] } {
  const chosen = inputHasAudio ? (codec ?? (container === 'webm' ? 'opus' : 'aac')) : 'none';
  switch (chosen) {
    case 'none':
      return { codec: 'none', options: ['-an'] };
    case 'copy':
      return { codec: 'copy', options: ['-c:a', 'copy'] };
    case 'opus':
      return { codec: 'opus', options: ['-c:a', 'libopus', '-b:a', `${bitrateKbps}k`] };
    case 'mp3':
      return { codec: 'mp3', options: ['-c:a', 'libmp3lame', '-b:a', `${bitrateKbps}k`] };
    default:
      return { codec: 'aac', options: ['-c:a', 'aac', '-b:a', `${bitrateKbps}k`] };
  }
}

const containerOptions = (container: Container, faststart: boolean): string[] =>
  faststart && (container === 'mp4' || container === 'mov') ? ['-movflags', '+faststart'] : [];

/** Encoder, audio and container options of a one-file video output (transcode, concat). */
export function videoFileOptions(
  params: {
    crf?: number | undefined;
    bitrate?: number | undefined;
    preset: Preset;
    container: Container;
    faststart: boolean;
  },
  encoder: VideoEncoder | undefined,
  audio: { options: string[] },
): string[] {
  return [
    ...(encoder?.streamOptions({ crf: params.crf, bitrateKbps: params.bitrate, preset: params.preset }) ??
      []),
    ...audio.options,
    ...containerOptions(params.container, params.faststart),
  ];
}

export function checkWithin(name: string, seconds: number, label: string, durationS: number): void {
  if (seconds >= durationS) {
    throw new InvalidParametersError(
      `${label}=${seconds} is past the end of ${name} (${durationS.toFixed(2)} s long)`,
    );
  }
}
