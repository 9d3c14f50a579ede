import fs from 'node:fs/promises';
import path from 'node:path';
import sharp, { type OutputInfo } from 'sharp';
import { BadInputError } from '../../worker/errors.js';
import { defineRun } from '../../worker/modules/module-contract.js';
import { classifySharpError } from '../_shared/sharp-errors.js';
import { writeOutputAtomically } from '../_shared/write-output.js';
import type { ImageConversionParams } from './manifest.js';

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
    const image = sharp(inputPath, { failOn: 'error', animated: true });
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
    let info: OutputInfo | undefined;
    const output = await writeOutputAtomically(context.outputDir, filename, async (temporaryPath) => {
      info = await pipeline.toFile(temporaryPath);
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
