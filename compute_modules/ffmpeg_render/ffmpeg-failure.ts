/**
 * Why ffmpeg failed, in its own words, and whether another attempt can help. ffmpeg says why among
 * banners, stream listings and encoder statistics; only its error lines are kept, the specific
 * cause first. Arguments ffmpeg refuses (an unknown option, encoder or filter, a mapping or filter
 * graph it cannot build, a codec the container cannot hold) fail the same way on every attempt; a
 * crash, a kill, a full disk, memory or an I/O error may not. The wording matched is ffmpeg 5.1's.
 */
import { JobError } from '../../worker/errors.js';

/**
 * An ffmpeg run that failed: `reason` holds ffmpeg's own lines, `retryable` whether to try again.
 * Not an InvalidParametersError when ffmpeg rejects its arguments: the module builds them from
 * parameters its schema accepted, so a rejection is as often the module's fault (the HLS map split
 * at its space was) as the parameters'.
 */
export class FfmpegRunError extends JobError {
  override readonly name = 'FfmpegRunError';
  /**
   * ENOSPC, EDQUOT or EROFS when ffmpeg could not write because the storage is full or read-only:
   * the worker's fault, not the job's, which the runner tells by this code as for any file error.
   */
  readonly code: string | undefined;
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly reason: string,
  ) {
    super(message);
    this.code = STORAGE_FAULTS.find(([pattern]) => pattern.test(reason))?.[1];
  }
}

const STORAGE_FAULTS: readonly [RegExp, string][] = [
  [/No space left on device/i, 'ENOSPC'],
  [/Disk quota exceeded/i, 'EDQUOT'],
  [/Read-only file system/i, 'EROFS'],
];

/** How the run ended: an exit code, a signal, or ffmpeg not started at all (the message says why). */
export type FfmpegEnd = { code: number } | { signal: string } | { notStarted: string };

/** Lines that can say why: ffmpeg prints them as errors, and also some warnings. */
const SAYS_WHY =
  /received signal|error|invalid|unable to|no such|not found|unrecogni[sz]ed|unknown|does not|could not|cannot|can't|failed|matches no streams|unconnected|no space left|out of memory|not a suitable|missing argument|expected number|mismatched|supported|not divisible|out of range|denied|refused/i;
/** Progress, statistics and listings: never the reason, even when a path in them matches. */
const NOISE =
  /^\s|^(?:frame|size)=|^video:\S+ audio:|^\[libx264 @[^\]]*\] (?:frame [IPB]|mb [IPB]|8x8|coded|i16|i8|i4|Weighted|ref [PB]|kb\/s|consecutive)|^(?:Input|Output) #\d|^Stream mapping:|^Press \[q\]|Opening '.*' for writing/;

/** The arguments themselves were refused: the same call fails the same way every time. */
const REFUSED = new RegExp(
  [
    // option parsing
    'Unrecognized option',
    'Missing argument for option',
    'Option \\S+ not found',
    'Expected number for',
    'Invalid (?:duration specification|stream specifier)',
    'Failed to set value',
    // names ffmpeg does not have
    'Unknown (?:encoder|decoder|input format)',
    'not a suitable output format',
    'No such filter',
    // filter graphs and stream mapping
    'Error initializing filter',
    "Mismatched '\\['",
    'matches no streams',
    'does not exist in any defined filter graph',
    'has an unconnected output',
    'Cannot find a matching stream',
    'Unable to (?:find mapping variant stream|map stream)',
    'Variant stream info update failed',
    // option values an encoder or muxer refuses
    'Error setting (?:option|preset)',
    'Unable to parse option value',
    'invalid preset',
    'Value .* out of range',
    'not divisible by',
    // codecs a container cannot hold
    'only supported in',
    'not currently supported in container',
  ].join('|'),
);
/** Trouble with the machine, or ffmpeg told to stop: a later attempt may not meet it. */
const RESOURCE =
  /received signal \d+|No space left on device|Disk quota exceeded|Cannot allocate memory|out of memory|Input\/output error|Resource temporarily unavailable|Too many open files|Stale file handle|No such file or directory|Broken pipe|Connection (?:reset|refused|timed out)/i;
/** Setting up an output failed: the call's fault unless the machine's trouble shows too. */
const SETUP_FAILED =
  /Error initializing output stream|Error while opening encoder|Could not write header|Invalid argument/;
/** What ffmpeg adds after the cause: kept last, and only when there is room. */
const CONSEQUENCE =
  /^(?:Error splitting the argument list|Error initializing output stream|Could not write header|Error initializing complex filters|Error reinitializing filters|Failed to inject frame|Error while processing the decoded data|av_interleaved_write_frame\(\)|Error writing trailer|Error closing file|Invalid argument$)/;
/** fluent-ffmpeg's own check of formats and codecs before it starts ffmpeg. */
const NOT_AVAILABLE = /(?:format|codec)s? .* (?:is|are) not available/;

const KEPT_LINES = 12;
const MAX_LINE = 200;
const MAX_REASON = 320;

/** ffmpeg's error lines from its stderr, read line by line: the first and the latest few, each once. */
export class FfmpegStderr {
  private readonly first: string[] = [];
  private latest: string[] = [];

  add(rawLine: string): void {
    if (NOISE.test(rawLine)) return;
    // `[hls @ 0x55b69af93cc0]` names the component; the address only makes lines differ.
    const line = rawLine.replace(/ @ 0x[0-9a-f]+\]/g, ']').trim();
    if (!SAYS_WHY.test(line) || this.first.includes(line)) return;
    if (this.first.length < KEPT_LINES) {
      this.first.push(line);
      return;
    }
    this.latest = [...this.latest.filter((kept) => kept !== line), line].slice(-KEPT_LINES);
  }

  get lines(): readonly string[] {
    return [...this.first, ...this.latest];
  }
}

const rank = (line: string) => (CONSEQUENCE.test(line) ? 2 : REFUSED.test(line) ? 0 : 1);

/** The cause first, then what followed from it, within MAX_REASON characters. */
function reasonOf(lines: readonly string[]): string {
  const ordered = [...lines].sort((a, b) => rank(a) - rank(b));
  const said = ordered.length > 1 ? ordered.filter((line) => line !== 'Conversion failed!') : ordered;
  let reason = '';
  for (const line of said) {
    const short = line.length > MAX_LINE ? `${line.slice(0, MAX_LINE - 1)}…` : line;
    const next = reason === '' ? short : `${reason}; ${short}`;
    if (reason !== '' && next.length > MAX_REASON) break;
    reason = next;
  }
  return reason;
}

function isRetryable(end: FfmpegEnd, lines: readonly string[], reachedOutput: boolean): boolean {
  if ('notStarted' in end) return !NOT_AVAILABLE.test(end.notStarted);
  if ('signal' in end) return true;
  if (lines.some((line) => REFUSED.test(line))) return false;
  if (lines.some((line) => RESOURCE.test(line))) return true;
  if (lines.some((line) => SETUP_FAILED.test(line))) return false;
  // ffmpeg said why and stopped before writing any output: it was still checking what it was given.
  return reachedOutput || lines.length === 0;
}

export function ffmpegFailure(end: FfmpegEnd, stderr: FfmpegStderr, reachedOutput: boolean): FfmpegRunError {
  const { lines } = stderr;
  const retryable = isRetryable(end, lines, reachedOutput);
  const reason = reasonOf(lines);
  const how =
    'code' in end ? `exit code ${end.code}` : 'signal' in end ? `killed by ${end.signal}` : end.notStarted;
  const what = retryable ? 'ffmpeg failed' : 'ffmpeg rejected its arguments';
  return new FfmpegRunError(
    reason === '' ? `${what}: ${how}` : `${what}: ${reason} (${how})`,
    retryable,
    reason,
  );
}
