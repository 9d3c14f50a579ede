/**
 * ffmpeg can be started before its filter graph is known: with `-filter_complex_script pipe:0` it
 * reads the graph from stdin while it parses its options, before it opens any input. Newer ffmpeg
 * drops that option (ffmpeg 9), so whether a binary takes it is asked once per binary and runner by running
 * it; a binary that does not gets its graph on the command line and the probe is not overlapped.
 */
import { execa } from 'execa';
import type { FfmpegBinaries } from './binaries.js';

export const GRAPH_FROM_STDIN = ['-filter_complex_script', 'pipe:0'] as const;

const answers = new Map<string, Promise<boolean>>();

export function takesGraphOnStdin(binaries: FfmpegBinaries): Promise<boolean> {
  const known = answers.get(binaries.ffmpeg);
  if (known) return known;
  const answer = execa(
    binaries.ffmpeg,
    [
      '-nostdin',
      '-hide_banner',
      '-v',
      'error',
      ...GRAPH_FROM_STDIN,
      '-map',
      '[v]',
      '-frames:v',
      '1',
      '-f',
      'null',
      '-',
    ],
    { input: 'nullsrc=size=16x16[v]', timeout: 10_000 },
  ).then(
    () => true,
    () => false,
  );
  answers.set(binaries.ffmpeg, answer);
  return answer;
}
