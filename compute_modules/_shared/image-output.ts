/**
 * Encoding a sharp pipeline into one of IMAGE_FORMATS and writing it into the job's output folder.
 * The image is encoded in memory first and then written under a temporary name and renamed, which
 * gives the job two real stages to report (transform+encode, then write) and no half-written file.
 */
import fs from 'node:fs/promises';
import sharp, { type Sharp } from 'sharp';
import { InvalidParametersError } from '../../worker/errors.js';
import { encodeBmp24 } from './bmp.js';
import { IMAGE_FORMATS, type ImageFormat } from './image-formats.js';
import { writeOutputAtomically } from './write-output.js';

/** How to encode, under the parameter names both image modules accept (their schemas feed it directly). */
export interface EncodeRequest {
  format: ImageFormat;
  quality?: number | undefined;
  lossless?: boolean | undefined;
  effort?: number | undefined;
  /** Hex colour that transparency is flattened onto for formats without alpha. */
  background: string;
  /** Keep EXIF and XMP (orientation reset, as the pixels are already upright) and tag as sRGB. */
  keep_metadata: boolean;
}

export interface EncodedImage {
  data: Buffer;
  width: number;
  /** Height of one frame. */
  height: number;
  frames: number;
  /** The quality the encoder used, for lossy formats (undefined for lossless output). */
  quality: number | undefined;
}

export async function encodeImage(pipeline: Sharp, request: EncodeRequest): Promise<EncodedImage> {
  const traits = IMAGE_FORMATS[request.format];
  let encoder = traits.alpha ? pipeline : pipeline.flatten({ background: request.background });
  if (request.keep_metadata) encoder = encoder.keepExif().keepXmp().withIccProfile('srgb');
  const quality = traits.lossy && !request.lossless ? (request.quality ?? traits.defaultQuality) : undefined;
  const lossless = request.lossless ?? false;
  const effort = request.effort;
  switch (request.format) {
    case 'bmp': {
      const raw = await encoder
        .toColourspace('srgb')
        .removeAlpha()
        .raw()
        .toBuffer({ resolveWithObject: true });
      const { width, height } = raw.info;
      return { data: encodeBmp24(raw.data, width, height), width, height, frames: 1, quality };
    }
    case 'jpeg':
      encoder = encoder.jpeg({ quality });
      break;
    case 'png':
      encoder = encoder.png({ effort });
      break;
    case 'webp':
      encoder = encoder.webp({ quality, lossless, effort });
      break;
    case 'avif':
      encoder = encoder.avif({ quality, lossless, effort });
      break;
    case 'heif':
      encoder = encoder.heif({ compression: 'hevc', quality, lossless, effort });
      break;
    case 'gif':
      encoder = encoder.gif({ effort });
      break;
    case 'tiff':
      encoder = encoder.tiff({ compression: 'lzw' });
      break;
  }
  try {
    const { data, info } = await encoder.toBuffer({ resolveWithObject: true });
    const frames = info.pages ?? 1;
    return { data, width: info.width, height: info.pageHeight ?? info.height, frames, quality };
  } catch (error) {
    if (
      request.format === 'heif' &&
      error instanceof Error &&
      /Unsupported compression/i.test(error.message)
    ) {
      throw new InvalidParametersError(
        `HEIF output needs libvips built with an HEVC encoder, and this worker's sharp ` +
          `(libvips ${sharp.versions.vips}) has none; use AVIF, the same container with AV1`,
      );
    }
    throw error;
  }
}

export async function writeEncodedImage(
  outputDir: string,
  filename: string,
  encoded: EncodedImage,
): Promise<{ path: string; sizeBytes: number }> {
  return writeOutputAtomically(outputDir, filename, (temporaryPath) =>
    fs.writeFile(temporaryPath, encoded.data),
  );
}
