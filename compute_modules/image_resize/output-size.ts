/**
 * The largest output a resize can give, worked out from the parameters and the input's size before
 * any pixel is decoded, so that a job asking to blow a small image up past the output limit fails at
 * once instead of allocating it. An upper bound, not sharp's exact rounding: `cover`, `contain` and
 * `fill` give exactly width × height, `inside` at most that, and `outside` and a single dimension
 * scale the input by the larger ratio.
 */
import type { ImageResizeParams } from './manifest.js';

export interface Size {
  width: number;
  height: number;
}

export function resizedSizeBound(
  input: Size,
  params: Pick<ImageResizeParams, 'width' | 'height' | 'fit' | 'without_enlargement'>,
): Size {
  const { width, height, fit, without_enlargement: withoutEnlargement } = params;
  const scaled = width === null || height === null || fit === 'outside';
  if (!scaled) return { width, height };
  const ratios = [width === null ? 0 : width / input.width, height === null ? 0 : height / input.height];
  const scale = withoutEnlargement ? Math.min(Math.max(...ratios), 1) : Math.max(...ratios);
  return { width: Math.ceil(input.width * scale), height: Math.ceil(input.height * scale) };
}
