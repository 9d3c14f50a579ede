import { z } from 'zod';
import { defineManifest } from '../../worker/modules/module-contract.js';

const dimension = z.number().int().min(1).max(65535);

export const imageResizeParams = z.object({
  width: dimension.default(256),
  height: dimension.default(256),
  preserve_aspect: z.boolean().default(true),
});

export type ImageResizeParams = z.infer<typeof imageResizeParams>;

export default defineManifest({
  description: 'Resize one image with sharp; writes resized.jpg.',
  params: imageResizeParams,
  defaultTimeoutS: 120,
});
