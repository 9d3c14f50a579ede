import { timedDrain, BUILT_IN_MODULES } from '../dist/bench/helpers/timed-drain.js';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs'; import path from 'node:path';
import Database from 'better-sqlite3';
const input = '/tmp/bench-clip.mp4';
if (!fs.existsSync(input)) execFileSync('ffmpeg', ['-v','error','-y','-f','lavfi','-i','testsrc2=size=1280x720:rate=30:duration=10','-f','lavfi','-i','sine=frequency=440:sample_rate=48000:duration=10','-c:v','libx264','-preset','veryfast','-crf','20','-pix_fmt','yuv420p','-c:a','aac',input]);
let db;
const r = await timedDrain({ taskType: 'ffmpeg_render', modulesDir: BUILT_IN_MODULES, args: ['--concurrency','1','--poll-interval','0.05','--log-level','debug'],
  prepare: (root) => Array.from({ length: 4 }, (_, i) => { const rel = `jobs/c${i}/input/clip.mp4`; fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true }); fs.copyFileSync(input, path.join(root, rel)); return { inputPath: rel, params: { operation: 'transcode', width: 640, height: 360, preset: 'veryfast' } }; }),
  inspect: (root) => { db = new Database(path.join(root, '..', 'media_store.db')); for (const j of db.prepare('select job_id, started_at, completed_at from jobs order by id').all()) console.log(j.job_id, j.completed_at - j.started_at); } });
console.log(r);
