/**
 * The output formats both image modules write, and the parameters that tune their encoders. Pure
 * data and zod pieces: manifests import this without loading sharp.
 */
import { z } from 'zod';

export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'avif' | 'heif' | 'gif' | 'tiff' | 'bmp';

interface FormatTraits {
  extension: string;
  /** Quality applies (the encoder is lossy). */
  lossy: boolean;
  /** `lossless` can be asked for. */
  lossless: boolean;
  /** Keeps transparency; the others are flattened onto the background colour. */
  alpha: boolean;
  /** Keeps every frame of an animated input; the others take the first frame. */
  animated: boolean;
  /** The encoder's CPU-effort range, when it has one. */
  effort?: readonly [min: number, max: number];
  /** Quality used when none is given (sharp's own defaults, JPEG's from the original worker). */
  defaultQuality?: number;
}

export const IMAGE_FORMATS: Readonly<Record<ImageFormat, FormatTraits>> = {
  jpeg: { extension: 'jpg', lossy: true, lossless: false, alpha: false, animated: false, defaultQuality: 95 },
  png: { extension: 'png', lossy: false, lossless: false, alpha: true, animated: false, effort: [1, 10] },
  webp: {
    extension: 'webp',
    lossy: true,
    lossless: true,
    alpha: true,
    animated: true,
    effort: [0, 6],
    defaultQuality: 80,
  },
  avif: {
    extension: 'avif',
    lossy: true,
    lossless: true,
    alpha: true,
    animated: false,
    effort: [0, 9],
    defaultQuality: 50,
  },
  heif: {
    extension: 'heif',
    lossy: true,
    lossless: true,
    alpha: true,
    animated: false,
    effort: [0, 9],
    defaultQuality: 50,
  },
  gif: { extension: 'gif', lossy: false, lossless: false, alpha: true, animated: true, effort: [1, 10] },
  tiff: { extension: 'tiff', lossy: false, lossless: false, alpha: true, animated: false },
  bmp: { extension: 'bmp', lossy: false, lossless: false, alpha: false, animated: false },
};

/** Names accepted in parameters (any case): the formats plus the aliases people type. */
const FORMAT_NAMES: Readonly<Record<string, ImageFormat>> = {
  JPEG: 'jpeg',
  JPG: 'jpeg',
  PNG: 'png',
  BMP: 'bmp',
  GIF: 'gif',
  TIFF: 'tiff',
  TIF: 'tiff',
  WEBP: 'webp',
  AVIF: 'avif',
  HEIF: 'heif',
  HEIC: 'heif',
};
/** Accepted, but not named in messages (those keep the Python worker's list, plus AVIF and HEIF). */
const UNLISTED_ALIASES: ReadonlySet<string> = new Set(['TIF', 'HEIC']);
export const SUPPORTED_FORMAT_NAMES = Object.keys(FORMAT_NAMES).filter((name) => !UNLISTED_ALIASES.has(name));

export function formatFromName(name: string): ImageFormat | undefined {
  return FORMAT_NAMES[name.toUpperCase()];
}

export const quality = z.number().int().min(1).max(100);
export const effort = z.number().int().min(0).max(10);

const HEX_COLOUR = /^#(?:[0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})$/i;
const NAMED_COLOURS: Readonly<Record<string, string>> = {
  white: '#ffffff',
  black: '#000000',
  transparent: '#00000000',
};
/** `#rgb`, `#rgba`, `#rrggbb`, `#rrggbbaa`, or white, black, transparent; yields the hex form. */
export const colour = z.string().transform((text, context) => {
  const value = text.trim().toLowerCase();
  const hex = NAMED_COLOURS[value] ?? value;
  if (HEX_COLOUR.test(hex)) return hex;
  context.addIssue({
    code: 'custom',
    message: `'${text}' is not a colour (use #rrggbb, #rrggbbaa, white, black or transparent)`,
  });
  return z.NEVER;
});

export interface EncoderOptions {
  quality?: number | undefined;
  lossless?: boolean | undefined;
  effort?: number | undefined;
}

/** Adds an issue for each option the chosen format cannot honour, naming the formats that can. */
export function checkEncoderOptions(
  format: ImageFormat,
  options: EncoderOptions,
  context: z.RefinementCtx,
  formatKey: string,
): void {
  const traits = IMAGE_FORMATS[format];
  const named = format.toUpperCase();
  if (options.lossless === true && !traits.lossless) {
    context.addIssue({
      code: 'custom',
      path: ['lossless'],
      message: `lossless applies to WEBP, AVIF and HEIF, not to ${formatKey}=${named}`,
    });
  }
  if (options.effort !== undefined) {
    const range = traits.effort;
    if (range === undefined) {
      context.addIssue({
        code: 'custom',
        path: ['effort'],
        message: `effort applies to PNG, WEBP, AVIF, HEIF and GIF, not to ${formatKey}=${named}`,
      });
    } else if (options.effort < range[0] || options.effort > range[1]) {
      context.addIssue({
        code: 'custom',
        path: ['effort'],
        message: `effort for ${named} must be from ${range[0]} to ${range[1]}, got ${options.effort}`,
      });
    }
  }
}
