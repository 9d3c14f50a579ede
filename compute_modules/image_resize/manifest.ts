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

export const MAX_DIMENSION = 16383;
export const FITS = ['cover', 'contain', 'fill', 'inside', 'outside'] as const;
/** sharp's gravities, compass points and the two smart crops (for cover and contain). */
export const POSITIONS = [
  'centre',
  'center',
  'north',
  'northeast',
  'east',
  'southeast',
  'south',
  'southwest',
  'west',
  'northwest',
  'top',
  'right top',
  'right',
  'right bottom',
  'bottom',
  'left bottom',
  'left',
  'left top',
  'entropy',
  'attention',
] as const;

/** null asks for the dimension to follow from the other one and the aspect ratio. */
const dimension = z
  .number()
  .int()
  .nullable()
  .default(256)
  .describe(`pixels, 1 to ${MAX_DIMENSION}; null = from the other dimension and the aspect ratio`);
const isValidDimension = (value: number | null) => value === null || (value >= 1 && value <= MAX_DIMENSION);

const outputFormat = z.string().transform((name, context): ImageFormat => {
  const format = formatFromName(name);
  if (format !== undefined) return format;
  context.addIssue({
    code: 'custom',
    message: `unsupported format ${name}; supported: ${SUPPORTED_FORMAT_NAMES.join(', ')}`,
  });
  return z.NEVER;
});

export const imageResizeParams = z
  .object({
    width: dimension,
    height: dimension,
    /** The original's switch: true = fit inside without enlarging, false = exactly width×height. */
    preserve_aspect: z
      .boolean()
      .default(true)
      .describe('true: fit inside, never enlarge (the default fit); false: exactly width×height'),
    fit: z.enum(FITS).optional().describe('overrides preserve_aspect'),
    position: z
      .enum(POSITIONS)
      .default('centre')
      .describe('what cover keeps and where contain places the image'),
    without_enlargement: z.boolean().optional().describe('default: true for fit inside, else false'),
    format: outputFormat.default('jpeg').describe(`${SUPPORTED_FORMAT_NAMES.join(', ')}; any case`),
    quality: quality.default(90).describe('1 to 100, for JPEG, WEBP, AVIF and HEIF'),
    lossless: z.boolean().optional().describe('WEBP, AVIF and HEIF'),
    effort: effort.optional().describe('encoder CPU effort: PNG/GIF 1–10, WEBP 0–6, AVIF/HEIF 0–9'),
    background: colour
      .default('#ffffff')
      .describe('padding for contain, and what transparency is flattened onto for JPEG/BMP'),
    keep_metadata: z.boolean().default(false).describe('keep EXIF and XMP (stripped by default)'),
  })
  .superRefine((params, context) => {
    const { width, height } = params;
    if (!isValidDimension(width) || !isValidDimension(height) || (width === null && height === null)) {
      // The original's message, verbatim: clients match on it.
      context.addIssue({ code: 'custom', message: `Invalid dimensions: width=${width}, height=${height}` });
    }
    checkEncoderOptions(params.format, params, context, 'format');
  })
  .transform((params) => {
    const fit = params.fit ?? (params.preserve_aspect ? 'inside' : 'fill');
    return { ...params, fit, without_enlargement: params.without_enlargement ?? fit === 'inside' };
  });

export type ImageResizeParams = z.infer<typeof imageResizeParams>;

export default defineManifest({
  description: 'Resize one image with sharp (fit, crop position, output format); writes resized.<ext>.',
  params: imageResizeParams,
  defaultTimeoutS: 120,
});
