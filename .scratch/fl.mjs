import { runFfmpeg } from '../dist/compute_modules/ffmpeg_render/fluent.js';
const b = { ffmpeg: 'ffmpeg', ffprobe: 'ffprobe' };
for (let i = 0; i < 3; i++) {
  const t = performance.now();
  await runFfmpeg(b, { inputs: [{ path: '/tmp/t.mp4' }], outputs: [{ path: '/tmp/o.mp4', options: ['-frames:v', '1', '-y'] }] }, { signal: new AbortController().signal });
  console.log('run', i, (performance.now() - t).toFixed(0), 'ms');
}
const t = performance.now();
const { execFileSync } = await import('node:child_process');
execFileSync('ffmpeg', ['-y', '-i', '/tmp/t.mp4', '-frames:v', '1', '/tmp/o2.mp4'], { stdio: 'ignore' });
console.log('direct', (performance.now() - t).toFixed(0), 'ms');
