import { z } from 'zod';
import { defineManifest } from '../../worker/modules/module-contract.js';

export const OUTPUT_FORMATS = ['JPEG', 'JPG', 'PNG', 'BMP', 'GIF', 'TIFF', 'WEBP', 'AVIF'] as const;

export const imageConversionParams = z.object({
  output_format: z
    .string()
    .default('PNG')
    .transform((format) => format.toUpperCase())
    .refine((format) => (OUTPUT_FORMATS as readonly string[]).includes(format), {
      error: (issue) =>
        `Unsupported output format: ${String(issue.input)}. Supported: ${OUTPUT_FORMATS.join(', ')}`,
    }),
  quality: z.number().int().min(1).max(100).default(95),
});

export type ImageConversionParams = z.infer<typeof imageConversionParams>;

export default defineManifest({
  description: 'Convert one image to another format with sharp; writes converted.<ext>.',
  params: imageConversionParams,
  defaultTimeoutS: 120,
});
