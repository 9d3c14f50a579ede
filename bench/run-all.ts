import { benchApiInsertLatency } from './api-insert-latency.js';
import { benchCancelLatency } from './cancel-latency.js';
import { benchChangeDetection } from './change-detection.js';
import { benchClaimThroughput } from './claim-throughput.js';
import { benchDashboard } from './dashboard.js';
import { benchEndToEnd } from './end-to-end.js';
import { benchFfmpegTranscode } from './ffmpeg-transcode.js';
import { benchImageResize } from './image-resize.js';
import { benchManyDaemons } from './many-daemons.js';
import { benchPostgres } from './postgres.js';
import { benchWakeUp } from './wake-up.js';

/**
 * `npm run bench` runs all; `npm run bench -- image` (or claim, e2e, ffmpeg, api-latency, wake-up,
 * detect, daemons, postgres, cancel, dashboard) runs the ones named.
 */
const BENCHES: Record<string, () => Promise<void>> = {
  claim: benchClaimThroughput,
  e2e: benchEndToEnd,
  image: benchImageResize,
  ffmpeg: benchFfmpegTranscode,
  'api-latency': benchApiInsertLatency,
  'wake-up': benchWakeUp,
  detect: benchChangeDetection,
  daemons: benchManyDaemons,
  postgres: benchPostgres,
  cancel: benchCancelLatency,
  dashboard: benchDashboard,
};
const wanted = process.argv.slice(2);
for (const [name, bench] of Object.entries(BENCHES)) {
  if (wanted.length === 0 || wanted.includes(name)) await bench();
}
