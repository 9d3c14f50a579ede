import { z } from 'zod';
import { defineManifest } from '../../worker/modules/module-contract.js';
import {
  checkEncoderOptions,
  colour,
  effort,
  formatFromName,
  type ImageFormat,
  quality,
  SUPPORTED_FORMAT_NAMES,
} from '../_shared/image-formats.js';

export const imageConversionParams = z
  .object({
    /** Any case; JPG and JPEG both write `converted.jpg`. */
    output_format: z
      .string()
      .default('PNG')
      .describe(`${SUPPORTED_FORMAT_NAMES.join(', ')}; any case`),
    /** For lossy formats; when absent JPEG uses the original's 95 and the others their encoder's default. */
    quality: quality.optional().describe('1 to 100 for JPEG (default 95), WEBP, AVIF, HEIF'),
    lossless: z.boolean().optional().describe('WEBP, AVIF and HEIF'),
    effort: effort.optional().describe('encoder CPU effort: PNG/GIF 1–10, WEBP 0–6, AVIF/HEIF 0–9'),
    background: colour.default('#ffffff').describe('what transparency is flattened onto for JPEG/BMP'),
    keep_metadata: z.boolean().default(false).describe('keep EXIF and XMP (stripped by default)'),
  })
  .superRefine((params, context) => {
    const format = formatFromName(params.output_format);
    if (format === undefined) {
      // The original's message, verbatim: clients match on it.
      context.addIssue({
        code: 'custom',
        message: `Unsupported output format: ${params.output_format}. Supported: ${SUPPORTED_FORMAT_NAMES.join(', ')}`,
      });
      return;
    }
    checkEncoderOptions(format, params, context, 'output_format');
  })
  .transform((params) => ({
    ...params,
    output_format: params.output_format.toUpperCase(),
    format: formatFromName(params.output_format) as ImageFormat,
  }));

export type ImageConversionParams = z.infer<typeof imageConversionParams>;

export default defineManifest({
  description: 'Convert one image to another format with sharp; writes converted.<ext>.',
  params: imageConversionParams,
  defaultTimeoutS: 120,
});
