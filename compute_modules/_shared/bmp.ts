/**
 * sharp (libvips) reads BMP only through ImageMagick and cannot write it, so the original's BMP
 * output is encoded here from sharp's raw pixels: an uncompressed 24-bit BITMAPINFOHEADER file,
 * the form every BMP decoder reads.
 */
const FILE_HEADER_BYTES = 14;
const INFO_HEADER_BYTES = 40;
const PIXELS_PER_METRE_72_DPI = 2835;

/** Encodes packed RGB (3 bytes per pixel, top row first) as a bottom-up 24-bit BMP. */
export function encodeBmp24(rgb: Buffer, width: number, height: number): Buffer {
  if (rgb.length !== width * height * 3)
    throw new Error(`expected ${width * height * 3} RGB bytes, got ${rgb.length}`);
  const rowBytes = Math.ceil((width * 3) / 4) * 4;
  const pixelBytes = rowBytes * height;
  const offset = FILE_HEADER_BYTES + INFO_HEADER_BYTES;
  const bmp = Buffer.alloc(offset + pixelBytes);
  bmp.write('BM', 0, 'ascii');
  bmp.writeUInt32LE(offset + pixelBytes, 2);
  bmp.writeUInt32LE(offset, 10);
  bmp.writeUInt32LE(INFO_HEADER_BYTES, 14);
  bmp.writeInt32LE(width, 18);
  bmp.writeInt32LE(height, 22); // positive: rows stored bottom-up
  bmp.writeUInt16LE(1, 26); // colour planes
  bmp.writeUInt16LE(24, 28); // bits per pixel
  bmp.writeUInt32LE(0, 30); // BI_RGB, uncompressed
  bmp.writeUInt32LE(pixelBytes, 34);
  bmp.writeInt32LE(PIXELS_PER_METRE_72_DPI, 38);
  bmp.writeInt32LE(PIXELS_PER_METRE_72_DPI, 42);
  for (let row = 0; row < height; row += 1) {
    const source = (height - 1 - row) * width * 3;
    const target = offset + row * rowBytes;
    for (let x = 0; x < width; x += 1) {
      const from = source + x * 3;
      const to = target + x * 3;
      bmp[to] = rgb[from + 2] as number;
      bmp[to + 1] = rgb[from + 1] as number;
      bmp[to + 2] = rgb[from] as number;
    }
  }
  return bmp;
}
