/**
 * Opening a job's input image: the header is read and checked before any pixel is decoded, so an
 * empty file, a file that is not an image, or a decompression bomb fails at once with a message
 * that names the file and the cause. Decoding itself fails on truncated or corrupt data rather than
 * producing a grey-filled image.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import sharp, { type Metadata, type Sharp } from 'sharp';
import { BadInputError } from '../../worker/errors.js';
import { describeSharpFailure } from './sharp-errors.js';

// libvips' operation cache keys file loads by name; a long-lived runner must not hold decoded
// images of finished jobs, nor serve a file that was replaced at the same path.
sharp.cache(false);

export interface InputImage {
  /** Decodes lazily, EXIF orientation applied; every frame when `animated` was asked and present. */
  image: Sharp;
  metadata: Metadata;
  /** Dimensions as displayed (after EXIF orientation), of one frame. */
  width: number;
  height: number;
  sizeBytes: number;
  name: string;
}

export interface OpenOptions {
  maxInputPixels: number;
  /** Keep every frame of an animated GIF/WebP (only when the output format can hold them). */
  animated: boolean;
}

export async function openInputImage(inputPath: string, options: OpenOptions): Promise<InputImage> {
  const name = path.basename(inputPath);
  const { size } = await fs.stat(inputPath);
  if (size === 0) throw new BadInputError(`Input image ${name} is empty (0 bytes)`);

  let metadata: Metadata;
  try {
    // Header only: no pixels are decoded here, so the limit is checked below with a clear message.
    metadata = await sharp(inputPath, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw describeSharpFailure(error, name);
  }
  // Read without `animated`, the header describes one frame; `pages` counts them all.
  const frameWidth = metadata.width ?? 0;
  const frameHeight = metadata.height ?? 0;
  const frames = options.animated ? (metadata.pages ?? 1) : 1;
  const pixels = frameWidth * frameHeight * frames;
  if (pixels > options.maxInputPixels) {
    const frameNote = frames > 1 ? ` × ${frames} frames` : '';
    throw new BadInputError(
      `Input image ${name} is ${frameWidth}×${frameHeight}${frameNote} = ${pixels} pixels, over the limit of ` +
        `${options.maxInputPixels} (a possible decompression bomb; the limit is --max-input-pixels)`,
    );
  }
  const image = sharp(inputPath, {
    failOn: 'error',
    limitInputPixels: options.maxInputPixels,
    animated: options.animated,
  }).rotate();
  const oriented = metadata.autoOrient ?? { width: frameWidth, height: frameHeight };
  return { image, metadata, width: oriented.width, height: oriented.height, sizeBytes: size, name };
}

/** The one input both image modules take; the message is the original worker's. */
export function singleInputPath(taskType: string, inputPaths: readonly string[]): string {
  const [inputPath, ...extra] = inputPaths;
  if (inputPath === undefined || extra.length > 0) {
    throw new BadInputError(`${taskType} requires exactly 1 input file, got ${inputPaths.length}`);
  }
  return inputPath;
}
