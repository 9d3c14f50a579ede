import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { BadInputError } from '../../worker/errors.js';
import { defineRun } from '../../worker/modules/module-contract.js';
import { classifySharpError } from '../_shared/sharp-errors.js';
import { writeOutputAtomically } from '../_shared/write-output.js';
import { encodeBmp24 } from './bmp.js';
import type { ImageConversionParams } from './manifest.js';

/** Formats whose output keeps every frame of an animated input; the others take the first. */
const ANIMATED_OUTPUTS = new Set(['gif', 'webp']);

export default defineRun<ImageConversionParams>(async (params, context) => {
  const [inputPath, ...extra] = context.inputPaths;
  if (inputPath === undefined || extra.length > 0) {
    throw new BadInputError(
      `image_conversion requires exactly 1 input file, got ${context.inputPaths.length}`,
    );
  }
  const format = params.output_format.toLowerCase();
  const extension = format === 'jpeg' ? 'jpg' : format;
  const filename = `converted.${extension}`;
  try {
    const image = sharp(inputPath, { failOn: 'error', animated: ANIMATED_OUTPUTS.has(extension) });
    const metadata = await image.metadata();
    const originalSize = (await fs.stat(inputPath)).size;
    let pipeline = image.rotate();
    if (extension === 'jpg')
      pipeline = pipeline.flatten({ background: '#ffffff' }).jpeg({ quality: params.quality });
    else if (extension === 'png') pipeline = pipeline.png();
    else if (extension === 'gif') pipeline = pipeline.gif();
    else if (extension === 'tiff') pipeline = pipeline.tiff({ quality: params.quality });
    else if (extension === 'webp') pipeline = pipeline.webp({ quality: params.quality });
    else if (extension === 'avif') pipeline = pipeline.avif({ quality: params.quality });
    let info: { width: number; height: number } | undefined;
    const output = await writeOutputAtomically(context.outputDir, filename, async (temporaryPath) => {
      if (extension === 'bmp') {
        const raw = await pipeline
          .flatten({ background: '#ffffff' })
          .toColourspace('srgb')
          .raw()
          .toBuffer({ resolveWithObject: true });
        info = raw.info;
        await fs.writeFile(temporaryPath, encodeBmp24(raw.data, raw.info.width, raw.info.height));
      } else {
        info = await pipeline.toFile(temporaryPath);
      }
    });
    const originalFormat = (metadata.format ?? 'unknown').toUpperCase();
    const outputFormat = params.output_format === 'JPG' ? 'JPEG' : params.output_format;
    return {
      outputFiles: [
        {
          file_id: 'converted_image',
          filename,
          metadata: {
            original_format: originalFormat,
            output_format: outputFormat,
            quality: params.quality,
            original_size_bytes: originalSize,
            output_size_bytes: output.sizeBytes,
            dimensions: [info?.width ?? 0, info?.height ?? 0],
          },
        },
      ],
      taskOutput: {
        success: true,
        original_format: originalFormat,
        output_format: outputFormat,
        quality: params.quality,
      },
    };
  } catch (error) {
    throw classifySharpError(error, path.basename(inputPath));
  }
});
