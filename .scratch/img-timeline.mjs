import { timedDrain, BUILT_IN_MODULES } from '../dist/bench/helpers/timed-drain.js';
import fs from 'node:fs'; import path from 'node:path'; import sharp from 'sharp';
const small = await sharp({ create: { width: 400, height: 300, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 128, sigma: 70 } } }).png().toBuffer();
const img = await sharp(small).resize(1155, 866, { fit: 'fill', kernel: 'cubic' }).sharpen().jpeg({ quality: 90 }).toBuffer();
const N = 300;
const r = await timedDrain({ taskType: 'image_resize', modulesDir: BUILT_IN_MODULES, args: ['--concurrency', '2', '--poll-interval', '0.05'],
  prepare: (root) => Array.from({ length: N }, (_, i) => { const rel = `jobs/b${i}/input/p.jpg`; fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true }); fs.writeFileSync(path.join(root, rel), img); return { inputPath: rel, params: { width: 800, height: null, quality: 80 } }; }) });
console.log(r.jobsPerSecond);
