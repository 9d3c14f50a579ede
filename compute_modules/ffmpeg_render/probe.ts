/**
 * What an input holds, read with ffprobe before anything is encoded: a file ffprobe cannot open, a
 * container it does not know, a file without a video stream or without a duration ends the job here
 * with a message that names the file, instead of failing halfway through an encode.
 */
import path from 'node:path';
import { BadInputError } from '../../worker/errors.js';
import type { FfmpegBinaries } from './binaries.js';
import { probeFile } from './fluent.js';

export interface MediaInfo {
  path: string;
  name: string;
  durationS: number;
  video: { codec: string; width: number; height: number; fps: number };
  audio: { codec: string } | undefined;
}

function frameRate(text: string | undefined): number {
  const [numerator, denominator] = (text ?? '').split('/').map(Number);
  if (!numerator || !denominator) return 0;
  return numerator / denominator;
}

const positive = (value: unknown): number | undefined => {
  const number = Number(value);
  return Number.isFinite(number) && number > 0 ? number : undefined;
};

export async function probeMedia(
  binaries: FfmpegBinaries,
  file: string,
  options: { needVideo: boolean } = { needVideo: true },
): Promise<MediaInfo> {
  const name = path.basename(file);
  let data: Awaited<ReturnType<typeof probeFile>>;
  try {
    data = await probeFile(binaries, file);
  } catch (error) {
    const detail = String((error as Error).message ?? error)
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('ffprobe exited'))
      .pop();
    throw new BadInputError(
      `Cannot read input ${name}: not a media file ffprobe can open, or corrupt (${detail ?? 'no detail'})`,
    );
  }
  const videoStream = data.streams.find(
    (stream) => stream.codec_type === 'video' && stream.disposition?.attached_pic !== 1,
  );
  const audioStream = data.streams.find((stream) => stream.codec_type === 'audio');
  if (videoStream === undefined && options.needVideo) {
    const found = audioStream ? `only audio (${audioStream.codec_name})` : 'no streams';
    throw new BadInputError(`Input ${name} has no video stream (${found})`);
  }
  const durationS = positive(data.format.duration) ?? positive(videoStream?.duration);
  if (durationS === undefined && options.needVideo) {
    throw new BadInputError(`Input ${name} has no readable duration (truncated or still being written?)`);
  }
  const width = Number(videoStream?.width ?? 0);
  const height = Number(videoStream?.height ?? 0);
  if (options.needVideo && (width <= 0 || height <= 0)) {
    throw new BadInputError(`Input ${name} has a video stream without dimensions (corrupt?)`);
  }
  return {
    path: file,
    name,
    durationS: durationS ?? 0,
    video: {
      codec: videoStream?.codec_name ?? 'none',
      width,
      height,
      fps: frameRate(videoStream?.avg_frame_rate) || frameRate(videoStream?.r_frame_rate) || 25,
    },
    audio: audioStream === undefined ? undefined : { codec: audioStream.codec_name ?? 'unknown' },
  };
}
