/**
 * The argument lists each video encoder gets, pinned: a change to encoders.ts that alters what
 * ffmpeg is told shows here as a diff, per encoder, per kind of rate control.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { type Accelerator, VIDEO_CODECS } from '../../compute_modules/ffmpeg_render/codecs.js';
import {
  hardwareEncoder,
  type RateControl,
  softwareEncoder,
  type VideoEncoder,
} from '../../compute_modules/ffmpeg_render/encoders.js';
import { repoFile } from '../helpers/workspace.js';

const RATES: RateControl[] = [
  { preset: 'medium' },
  { preset: 'ultrafast', crf: 30 },
  { preset: 'veryslow', bitrateKbps: 2500 },
];
const ACCELERATORS: Accelerator[] = ['nvenc', 'vaapi', 'qsv'];

const described = (encoder: VideoEncoder) => ({
  name: encoder.name,
  accelerator: encoder.accelerator ?? null,
  input: encoder.inputOptions,
  filter: encoder.filterSuffix,
  args: RATES.map((rate) => encoder.streamOptions(rate)),
  spec: encoder.streamOptions(RATES[0] as RateControl, ':v:1'),
});

test('every encoder gets the arguments it always got, for each kind of rate control', () => {
  const expected = JSON.parse(fs.readFileSync(repoFile('test/fixtures/encoder-arguments.json'), 'utf8'));
  const actual: Record<string, unknown> = {};
  for (const codec of VIDEO_CODECS) {
    actual[`software ${codec}`] = described(softwareEncoder(codec, new Set()));
    if (codec === 'av1') {
      actual['software av1 with libsvtav1'] = described(softwareEncoder(codec, new Set(['libsvtav1'])));
    }
    for (const accelerator of ACCELERATORS) {
      actual[`${accelerator} ${codec}`] = described(
        hardwareEncoder(codec, accelerator, '/dev/dri/renderD129'),
      );
    }
  }
  assert.deepEqual(actual, expected);
});
