/**
 * Video encoders: the software one for each codec, and the hardware ones (NVENC, VAAPI, QSV) that
 * are used only when the ffmpeg binary has them and a one-frame test encode works on this machine.
 * Each answer is probed once per runner process and binary, and cached.
 */
import fs from 'node:fs';
import { execa } from 'execa';
import type { FfmpegBinaries } from './binaries.js';
import { type Accelerator, type Hardware, PRESETS, type Preset, type VideoCodec } from './codecs.js';
import { listVideoEncoders } from './fluent.js';
import { DEFAULT_GPU_DEVICE } from './settings.js';

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

/**
 * How one encoder is driven. Its options for a stream are `-c <name>`, then `tuning`, then the rate:
 * a bitrate when one is asked for, else constant quality (`qualityFlag`, `defaultQuality`).
 */
interface EncoderSpec {
  /** Options that depend on the preset only, as flag and value. */
  tuning(preset: Preset): readonly (readonly [flag: string, value: string])[];
  qualityFlag: string;
  defaultQuality: number;
  /** libvpx and libaom read constant quality only with `-b 0`. */
  qualityNeedsZeroBitrate?: boolean;
  /** A bitrate is also given a buffer of twice its size (the software encoders). */
  bufferedBitrate: boolean;
}

const SOFTWARE_SPECS: Readonly<Record<string, EncoderSpec>> = {
  libx264: {
    tuning: (preset) => [['-preset', preset]],
    qualityFlag: '-crf',
    defaultQuality: 23,
    bufferedBitrate: true,
  },
  libx265: {
    tuning: (preset) => [
      ['-preset', preset],
      ['-tag', 'hvc1'],
      ['-x265-params', 'log-level=error'],
    ],
    qualityFlag: '-crf',
    defaultQuality: 28,
    bufferedBitrate: true,
  },
  'libvpx-vp9': {
    tuning: (preset) => [
      ['-deadline', 'good'],
      ['-cpu-used', String(Math.max(0, 5 - Math.floor(presetIndex(preset) * 0.625)))],
      ['-row-mt', '1'],
    ],
    qualityFlag: '-crf',
    defaultQuality: 33,
    qualityNeedsZeroBitrate: true,
    bufferedBitrate: true,
  },
  libsvtav1: {
    tuning: (preset) => [['-preset', String(12 - presetIndex(preset))]],
    qualityFlag: '-crf',
    defaultQuality: 35,
    bufferedBitrate: true,
  },
  'libaom-av1': {
    tuning: (preset) => [
      ['-cpu-used', String(8 - presetIndex(preset))],
      ['-row-mt', '1'],
    ],
    qualityFlag: '-crf',
    defaultQuality: 35,
    qualityNeedsZeroBitrate: true,
    bufferedBitrate: true,
  },
};

/** The software encoders of each codec, preferred first; the last is the one used when none is built in. */
const SOFTWARE_ENCODERS: Readonly<Record<VideoCodec, readonly string[]>> = {
  h264: ['libx264'],
  hevc: ['libx265'],
  vp9: ['libvpx-vp9'],
  av1: ['libsvtav1', 'libaom-av1'],
};

interface HardwareSpec extends EncoderSpec {
  encoderName(codec: VideoCodec): string;
  inputOptions(gpuDevice: string): string[];
  filterSuffix: string;
}

const HARDWARE_SPECS: Readonly<Record<Accelerator, HardwareSpec>> = {
  nvenc: {
    encoderName: (codec) => `${codec}_nvenc`,
    inputOptions: () => [],
    filterSuffix: '',
    // NVENC presets p1 (fastest) … p7 (best).
    tuning: (preset) => [['-preset', `p${1 + Math.round((presetIndex(preset) * 6) / 8)}`]],
    qualityFlag: '-cq',
    defaultQuality: 23,
    bufferedBitrate: false,
  },
  vaapi: {
    encoderName: (codec) => `${codec}_vaapi`,
    inputOptions: (gpuDevice) => ['-vaapi_device', gpuDevice],
    filterSuffix: ',format=nv12,hwupload',
    tuning: () => [],
    qualityFlag: '-qp',
    defaultQuality: 23,
    bufferedBitrate: false,
  },
  qsv: {
    encoderName: (codec) => `${codec}_qsv`,
    inputOptions: (gpuDevice) => ['-qsv_device', gpuDevice],
    filterSuffix: '',
    // QSV has no presets faster than veryfast.
    tuning: (preset) => [['-preset', preset === 'ultrafast' || preset === 'superfast' ? 'veryfast' : preset]],
    qualityFlag: '-global_quality',
    defaultQuality: 23,
    bufferedBitrate: false,
  },
};

/** `-c <name>`, the tuning, then the rate control, each flag with the stream specifier `s`. */
function streamOptionsFor(name: string, spec: EncoderSpec): VideoEncoder['streamOptions'] {
  return (rate, s = ':v') => {
    const options = [`-c${s}`, name];
    for (const [flag, value] of spec.tuning(rate.preset)) options.push(flag + s, value);
    if (rate.bitrateKbps !== undefined) {
      const kbps = `${rate.bitrateKbps}k`;
      options.push(`-b${s}`, kbps, `-maxrate${s}`, kbps);
      if (spec.bufferedBitrate) options.push(`-bufsize${s}`, `${rate.bitrateKbps * 2}k`);
    } else {
      if (spec.qualityNeedsZeroBitrate) options.push(`-b${s}`, '0');
      options.push(spec.qualityFlag + s, String(rate.crf ?? spec.defaultQuality));
    }
    return options;
  };
}

export function softwareEncoder(codec: VideoCodec, available: ReadonlySet<string>): VideoEncoder {
  const names = SOFTWARE_ENCODERS[codec];
  const name = names.find((candidate) => available.has(candidate)) ?? (names.at(-1) as string);
  return {
    name,
    accelerator: undefined,
    inputOptions: [],
    filterSuffix: '',
    streamOptions: streamOptionsFor(name, SOFTWARE_SPECS[name] as EncoderSpec),
  };
}

export function hardwareEncoder(
  codec: VideoCodec,
  accelerator: Accelerator,
  gpuDevice: string,
): VideoEncoder {
  const spec = HARDWARE_SPECS[accelerator];
  const name = spec.encoderName(codec);
  return {
    name,
    accelerator,
    inputOptions: spec.inputOptions(gpuDevice),
    filterSuffix: spec.filterSuffix,
    streamOptions: streamOptionsFor(name, spec),
  };
}

const encoderLists = new Map<string, Promise<Set<string>>>();
/** Names of the video encoders a binary was built with, read once per binary and runner. */
export function availableEncoders(binaries: FfmpegBinaries): Promise<Set<string>> {
  let list = encoderLists.get(binaries.ffmpeg);
  if (!list) {
    list = listVideoEncoders(binaries);
    encoderLists.set(binaries.ffmpeg, list);
  }
  return list;
}

const hardwareChecks = new Map<string, Promise<string | undefined>>();

/** Why `encoder` cannot run here (undefined when it can): not built in, no device, or a failed test encode. */
function hardwareProblem(
  binaries: FfmpegBinaries,
  encoder: VideoEncoder,
  built: Set<string>,
  gpuDevice: string,
): Promise<string | undefined> {
  const key = JSON.stringify([binaries.ffmpeg, encoder.name, gpuDevice]);
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
