import fs from 'node:fs';
import sharp from 'sharp';
sharp.cache(false);
const small = await sharp({ create: { width: 400, height: 300, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 128, sigma: 70 } } }).png().toBuffer();
const img = await sharp(small).resize(1155, 866, { fit: 'fill', kernel: 'cubic' }).sharpen().jpeg({ quality: 90 }).toBuffer();
const dir = '/tmp/exp/v'; fs.rmSync(dir, { recursive: true, force: true }); fs.mkdirSync(dir, { recursive: true });
const N = 300; const files = []; for (let i = 0; i < N; i++) { const f = `${dir}/p${i}.jpg`; fs.writeFileSync(f, img); files.push(f); }
async function loop(name, fn, conc = 2) { let next = 0; const t = performance.now(); await Promise.all(Array.from({ length: conc }, async () => { for (let i = next++; i < N; i = next++) await fn(files[i], i); })); console.log(name.padEnd(28), (N / ((performance.now() - t) / 1000)).toFixed(1), 'jobs/s'); }
const opts = { fit: 'inside', withoutEnlargement: true, position: 'centre', background: '#ffffff' };
const raw = (f) => sharp(f).rotate().resize({ width: 800, withoutEnlargement: true }).jpeg({ quality: 80 }).toFile(f + '.out.jpg');
const current = async (f) => { await fs.promises.stat(f); await sharp(f, { limitInputPixels: false }).metadata(); const { data } = await sharp(f, { failOn: 'error', limitInputPixels: 1e8 }).rotate().resize(800, null, opts).flatten({ background: '#ffffff' }).jpeg({ quality: 80 }).toBuffer({ resolveWithObject: true }); const t = f + '.tmp'; await fs.promises.writeFile(t, data); await fs.promises.rename(t, f + '.c.jpg'); await fs.promises.stat(f + '.c.jpg'); };
const buffered = async (f) => { const input = await fs.promises.readFile(f); await sharp(input, { limitInputPixels: false }).metadata(); const { data } = await sharp(input, { failOn: 'error', limitInputPixels: 1e8 }).rotate().resize(800, null, opts).flatten({ background: '#ffffff' }).jpeg({ quality: 80 }).toBuffer({ resolveWithObject: true }); const t = f + '.tmp'; await fs.promises.writeFile(t, data); await fs.promises.rename(t, f + '.b.jpg'); };
const noMeta = async (f) => { const { data } = await sharp(f, { failOn: 'error', limitInputPixels: 1e8 }).rotate().resize(800, null, opts).flatten({ background: '#ffffff' }).jpeg({ quality: 80 }).toBuffer({ resolveWithObject: true }); const t = f + '.tmp'; await fs.promises.writeFile(t, data); await fs.promises.rename(t, f + '.n.jpg'); };
const noFlatten = async (f) => { await sharp(f, { limitInputPixels: false }).metadata(); const { data } = await sharp(f, { failOn: 'error', limitInputPixels: 1e8 }).rotate().resize(800, null, opts).jpeg({ quality: 80 }).toBuffer({ resolveWithObject: true }); const t = f + '.tmp'; await fs.promises.writeFile(t, data); await fs.promises.rename(t, f + '.f.jpg'); };
for (let r = 0; r < 2; r++) { await loop('raw', raw); await loop('current', current); await loop('buffered', buffered); await loop('no metadata', noMeta); await loop('no flatten', noFlatten); }
