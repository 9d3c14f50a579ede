/**
 * Video encoders: the software one for each codec, and the hardware ones (NVENC, VAAPI, QSV) that
 * are used only when the ffmpeg binary has them and a one-frame test encode works on this machine.
 * Each answer is probed once per runner process and cached.
 */
import fs from 'node:fs';
import { execa } from 'execa';
import type { FfmpegBinaries } from './binaries.js';
import { listVideoEncoders } from './fluent.js';

export const VIDEO_CODECS = ['h264', 'hevc', 'vp9', 'av1'] as const;
export type VideoCodec = (typeof VIDEO_CODECS)[number];
export const HARDWARE = ['auto', 'none', 'nvenc', 'vaapi', 'qsv'] as const;
export type Hardware = (typeof HARDWARE)[number];
type Accelerator = Exclude<Hardware, 'auto' | 'none'>;
export const PRESETS = [
  'ultrafast',
  'superfast',
  'veryfast',
  'faster',
  'fast',
  'medium',
  'slow',
  'slower',
  'veryslow',
] as const;
export type Preset = (typeof PRESETS)[number];

export interface RateControl {
  crf?: number | undefined;
  bitrateKbps?: number | undefined;
  preset: Preset;
}

export interface VideoEncoder {
  /** ffmpeg's encoder name: libx264, h264_nvenc… */
  name: string;
  accelerator: Accelerator | undefined;
  /** Options for one output video stream, `:v:N` specifier added by the caller when given. */
  streamOptions(rate: RateControl, specifier?: string): string[];
  /** Global input options (a VAAPI device). */
  inputOptions: readonly string[];
  /** Appended to the video filter chain (upload to the GPU for VAAPI). */
  filterSuffix: string;
}

const presetIndex = (preset: Preset) => PRESETS.indexOf(preset);
/** The render node VAAPI and QSV encode on unless the operator names another (GPU_DEVICE). */
export const DEFAULT_GPU_DEVICE = '/dev/dri/renderD128';
const VAAPI_NAMES: Readonly<Record<VideoCodec, string>> = {
  h264: 'h264_vaapi',
  hevc: 'hevc_vaapi',
  vp9: 'vp9_vaapi',
  av1: 'av1_vaapi',
};

export function softwareEncoder(codec: VideoCodec, available: ReadonlySet<string>): VideoEncoder {
  const rateOptions = (rate: RateControl, s: string, defaultCrf: number, crfFlag = '-crf'): string[] =>
    rate.bitrateKbps !== undefined
      ? [
          `-b${s}`,
          `${rate.bitrateKbps}k`,
          `-maxrate${s}`,
          `${rate.bitrateKbps}k`,
          `-bufsize${s}`,
          `${rate.bitrateKbps * 2}k`,
        ]
      : [crfFlag + s, String(rate.crf ?? defaultCrf)];
  const base = { accelerator: undefined, inputOptions: [], filterSuffix: '' };
  switch (codec) {
    case 'h264':
      return {
        ...base,
        name: 'libx264',
        streamOptions: (rate, s = ':v') => [
          `-c${s}`,
          'libx264',
          `-preset${s}`,
          rate.preset,
          ...rateOptions(rate, s, 23),
        ],
      };
    case 'hevc':
      return {
        ...base,
        name: 'libx265',
        streamOptions: (rate, s = ':v') => [
          `-c${s}`,
          'libx265',
          `-preset${s}`,
          rate.preset,
          `-tag${s}`,
          'hvc1',
          `-x265-params${s}`,
          'log-level=error',
          ...rateOptions(rate, s, 28),
        ],
      };
    case 'vp9':
      return {
        ...base,
        name: 'libvpx-vp9',
        streamOptions: (rate, s = ':v') => [
          `-c${s}`,
          'libvpx-vp9',
          `-deadline${s}`,
          'good',
          `-cpu-used${s}`,
          String(Math.max(0, 5 - Math.floor(presetIndex(rate.preset) * 0.625))),
          `-row-mt${s}`,
          '1',
          ...(rate.bitrateKbps === undefined ? [`-b${s}`, '0'] : []),
          ...rateOptions(rate, s, 33),
        ],
      };
    case 'av1':
      if (available.has('libsvtav1')) {
        return {
          ...base,
          name: 'libsvtav1',
          streamOptions: (rate, s = ':v') => [
            `-c${s}`,
            'libsvtav1',
            `-preset${s}`,
            String(12 - presetIndex(rate.preset)),
            ...rateOptions(rate, s, 35),
          ],
        };
      }
      return {
        ...base,
        name: 'libaom-av1',
        streamOptions: (rate, s = ':v') => [
          `-c${s}`,
          'libaom-av1',
          `-cpu-used${s}`,
          String(8 - presetIndex(rate.preset)),
          `-row-mt${s}`,
          '1',
          ...(rate.bitrateKbps === undefined ? [`-b${s}`, '0'] : []),
          ...rateOptions(rate, s, 35),
        ],
      };
  }
}

function hardwareEncoder(codec: VideoCodec, accelerator: Accelerator, gpuDevice: string): VideoEncoder {
  const hwRate = (rate: RateControl, s: string, qualityFlag: string): string[] =>
    rate.bitrateKbps !== undefined
      ? [`-b${s}`, `${rate.bitrateKbps}k`, `-maxrate${s}`, `${rate.bitrateKbps}k`]
      : [qualityFlag + s, String(rate.crf ?? 23)];
  switch (accelerator) {
    case 'nvenc':
      return {
        name: `${codec}_nvenc`,
        accelerator,
        inputOptions: [],
        filterSuffix: '',
        // NVENC presets p1 (fastest) … p7 (best).
        streamOptions: (rate, s = ':v') => [
          `-c${s}`,
          `${codec}_nvenc`,
          `-preset${s}`,
          `p${1 + Math.round((presetIndex(rate.preset) * 6) / 8)}`,
          ...hwRate(rate, s, '-cq'),
        ],
      };
    case 'vaapi':
      return {
        name: VAAPI_NAMES[codec],
        accelerator,
        inputOptions: ['-vaapi_device', gpuDevice],
        filterSuffix: ',format=nv12,hwupload',
        streamOptions: (rate, s = ':v') => [`-c${s}`, VAAPI_NAMES[codec], ...hwRate(rate, s, '-qp')],
      };
    case 'qsv':
      return {
        name: `${codec}_qsv`,
        accelerator,
        inputOptions: ['-qsv_device', gpuDevice],
        filterSuffix: '',
        streamOptions: (rate, s = ':v') => [
          `-c${s}`,
          `${codec}_qsv`,
          `-preset${s}`,
          rate.preset === 'ultrafast' || rate.preset === 'superfast' ? 'veryfast' : rate.preset,
          ...hwRate(rate, s, '-global_quality'),
        ],
      };
  }
}

let encoderList: Promise<Set<string>> | undefined;
/** Names of the video encoders the binary was built with, read once per runner. */
export function availableEncoders(binaries: FfmpegBinaries): Promise<Set<string>> {
  encoderList ??= listVideoEncoders(binaries);
  return encoderList;
}

const hardwareChecks = new Map<string, Promise<string | undefined>>();

/** Why `encoder` cannot run here (undefined when it can): not built in, no device, or a failed test encode. */
function hardwareProblem(
  binaries: FfmpegBinaries,
  encoder: VideoEncoder,
  built: Set<string>,
  gpuDevice: string,
): Promise<string | undefined> {
  const key = `${encoder.name} ${gpuDevice}`;
  const cached = hardwareChecks.get(key);
  if (cached) return cached;
  const check = (async () => {
    if (!built.has(encoder.name)) return `${encoder.name} is not in this ffmpeg build`;
    const device = { nvenc: '/dev/nvidiactl', vaapi: gpuDevice, qsv: gpuDevice }[
      encoder.accelerator ?? 'nvenc'
    ];
    if (!fs.existsSync(device)) return `${encoder.name} needs ${device}, which this machine does not have`;
    try {
      await execa(
        binaries.ffmpeg,
        [
          '-hide_banner',
          '-v',
          'error',
          ...encoder.inputOptions,
          '-f',
          'lavfi',
          '-i',
          'color=size=256x256:rate=25:duration=0.2',
          '-vf',
          `format=yuv420p${encoder.filterSuffix}`,
          ...encoder.streamOptions({ preset: 'medium' }),
          '-f',
          'null',
          '-',
        ],
        { timeout: 20_000 },
      );
      return undefined;
    } catch (error) {
      const stderr = String((error as { stderr?: string }).stderr ?? '')
        .trim()
        .split('\n')
        .pop();
      return `${encoder.name} test encode failed (${stderr || (error as Error).message})`;
    }
  })();
  hardwareChecks.set(key, check);
  return check;
}

export interface EncoderChoice {
  encoder: VideoEncoder;
  /** Set when hardware was asked for (or auto found none) and the software encoder runs instead. */
  fallbackReason?: string;
}

export async function chooseVideoEncoder(
  binaries: FfmpegBinaries,
  codec: VideoCodec,
  hardware: Hardware,
  gpuDevice = DEFAULT_GPU_DEVICE,
): Promise<EncoderChoice> {
  const built = await availableEncoders(binaries);
  const software = softwareEncoder(codec, built);
  if (hardware === 'none') return { encoder: software };
  const candidates: Accelerator[] = hardware === 'auto' ? ['nvenc', 'vaapi', 'qsv'] : [hardware];
  const problems: string[] = [];
  for (const accelerator of candidates) {
    const encoder = hardwareEncoder(codec, accelerator, gpuDevice);
    const problem = await hardwareProblem(binaries, encoder, built, gpuDevice);
    if (problem === undefined) return { encoder };
    problems.push(problem);
  }
  // `auto` finding no GPU is the normal case on most machines, not a fallback worth reporting.
  if (hardware === 'auto') return { encoder: software };
  return { encoder: software, fallbackReason: `${problems.join('; ')}; used ${software.name}` };
}
