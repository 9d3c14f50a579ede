/** Real images made by the tests: each one is what a camera, an editor or an attacker would produce. */
import { execFileSync } from 'node:child_process';
import zlib from 'node:zlib';
import sharp from 'sharp';

export const solid = (width: number, height: number, background: string, channels: 3 | 4 = 3) =>
  sharp({ create: { width, height, channels, background } });

export const solidJpeg = (width: number, height: number, background: string) =>
  solid(width, height, background).jpeg().toBuffer();

/** Stored 80×40, left half red and right half blue, with EXIF orientation 6 (display rotated 90° clockwise). */
export async function exifRotatedJpeg(): Promise<Buffer> {
  const pixels = Buffer.alloc(80 * 40 * 3);
  for (let y = 0; y < 40; y++) {
    for (let x = 0; x < 80; x++) {
      const at = (y * 80 + x) * 3;
      if (x < 40) pixels[at] = 255;
      else pixels[at + 2] = 255;
    }
  }
  return sharp(pixels, { raw: { width: 80, height: 40, channels: 3 } })
    .jpeg({ quality: 95 })
    .withMetadata({ orientation: 6 })
    .toBuffer();
}

/** Colour `[r, g, b]` (sRGB) stored as Display P3 numbers with the P3 profile embedded. */
export const displayP3Png = (rgb: readonly [number, number, number]) =>
  solid(16, 16, `rgb(${rgb.join(',')})`)
    .withIccProfile('p3')
    .png()
    .toBuffer();

export const cmykJpeg = () => solid(64, 48, '#ff0000').toColourspace('cmyk').jpeg().toBuffer();
export const sixteenBitPng = () => solid(64, 48, '#336699').toColourspace('rgb16').png().toBuffer();
export const grayscaleJpeg = () => solid(64, 48, '#808080').grayscale().jpeg().toBuffer();

/** A three-frame animated GIF (red, green, blue), 30×20 per frame. */
export async function animatedGif(): Promise<Buffer> {
  const frames = await Promise.all(
    ['#ff0000', '#00ff00', '#0000ff'].map((colour) => solid(30, 20, colour).png().toBuffer()),
  );
  return sharp(frames, { join: { animated: true } })
    .gif({ delay: [100, 100, 100], loop: 0 })
    .toBuffer();
}

/**
 * A valid grayscale PNG of width×height black pixels: a few hundred kilobytes on disk that would
 * decode to width×height bytes (the classic decompression bomb). Written by hand, as no encoder
 * would be asked to make one. With `cutPixelData`, the file stops 64 bytes into the compressed
 * pixels (no IEND): its header is intact, but any decoder that goes past it fails.
 */
export function decompressionBombPng(
  width: number,
  height: number,
  { cutPixelData = false }: { cutPixelData?: boolean } = {},
): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const typed = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(typed));
    return Buffer.concat([length, typed, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 0, 0, 0, 0], 8); // 8-bit grayscale, deflate, no filter, no interlace
  const scanlines = Buffer.alloc((width + 1) * height); // filter byte 0 + zero pixels per row
  const pixelData = zlib.deflateSync(scanlines, { level: 9 });
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    ...(cutPixelData
      ? [chunk('IDAT', pixelData.subarray(0, 64))]
      : [chunk('IDAT', pixelData), chunk('IEND', Buffer.alloc(0))]),
  ]);
}

/** Decodes any image with ffmpeg (a decoder independent of sharp) into packed RGB bytes. */
export function decodeWithFfmpeg(file: string): Buffer {
  return execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], {
    maxBuffer: 64 * 1024 * 1024,
  });
}

/** The first pixel of an image as [r, g, b]. */
export async function firstPixel(
  image: Buffer | string,
  at: { left: number; top: number } = { left: 0, top: 0 },
) {
  const { data } = await sharp(image)
    .extract({ ...at, width: 1, height: 1 })
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  return [data[0] ?? -1, data[1] ?? -1, data[2] ?? -1];
}

/** Whether two colours are within `tolerance` on every channel (lossy codecs move values a little). */
export const near = (actual: readonly number[], expected: readonly number[], tolerance = 8) =>
  actual.length === expected.length &&
  actual.every((value, index) => Math.abs(value - (expected[index] ?? 0)) <= tolerance);
