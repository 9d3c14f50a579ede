import { benchClaimThroughput } from './claim-throughput.js';
import { benchEndToEnd } from './end-to-end.js';
import { benchFfmpegTranscode } from './ffmpeg-transcode.js';
import { benchImageResize } from './image-resize.js';

/** `npm run bench` runs all; `npm run bench -- image` (or claim, e2e, ffmpeg) runs the ones named. */
const BENCHES: Record<string, () => Promise<void>> = {
  claim: benchClaimThroughput,
  e2e: benchEndToEnd,
  image: benchImageResize,
  ffmpeg: benchFfmpegTranscode,
};
const wanted = process.argv.slice(2);
for (const [name, bench] of Object.entries(BENCHES)) {
  if (wanted.length === 0 || wanted.includes(name)) await bench();
}
