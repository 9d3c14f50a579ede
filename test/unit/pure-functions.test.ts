/**
 * The pure functions behind the worker's decisions, tested directly: no process, database, broker
 * or media. What they decide is also exercised end to end elsewhere; here each edge is named.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fitSize } from '../../compute_modules/ffmpeg_render/operations/common.js';
import { parseDurationSeconds } from '../../worker/config/config.js';
import { JobCancelledError } from '../../worker/errors.js';
import {
  boundProgress,
  decideAttemptEnd,
  outcomeOf,
  recoveryReason,
} from '../../worker/jobs/attempt-lifecycle.js';
import { boundText } from '../../worker/jobs/bounded-text.js';
import { CANCELLED_FAILURE } from '../../worker/jobs/operator-requests.js';
import { exponentialBackoff } from '../../worker/jobs/retry-policy.js';
import { isBroadPattern, topicMatches } from '../../worker/mqtt-tools/topic-filter.js';
import { DaemonToRunnerSchema, parseMessage, RunnerToDaemonSchema } from '../../worker/runner/protocol.js';
import { describeExit } from '../../worker/runner/runner-process.js';
import { redactedUrl } from '../../worker/store/postgres/url.js';

describe('size fitting (fitSize)', () => {
  const source = { width: 1920, height: 1080 };
  test('one side given: the other follows the aspect ratio, both even', () => {
    assert.deepEqual(fitSize(source, { width: 640 }, false), { width: 640, height: 360 });
    assert.deepEqual(fitSize(source, { height: 101 }, false), { width: 180, height: 102 });
  });
  test('both given: fits inside them', () => {
    assert.deepEqual(fitSize(source, { width: 640, height: 640 }, false), { width: 640, height: 360 });
  });
  test('never enlarged unless allowed; images need not be even', () => {
    assert.deepEqual(fitSize(source, { width: 3840 }, false), source);
    assert.deepEqual(fitSize(source, { width: 3840 }, true), { width: 3840, height: 2160 });
    assert.deepEqual(fitSize({ width: 3, height: 3 }, { width: 1 }, false, { even: false }), {
      width: 1,
      height: 1,
    });
    assert.deepEqual(fitSize({ width: 3, height: 3 }, { width: 1 }, false), { width: 2, height: 2 });
  });
});

describe('MQTT topic filters', () => {
  const cases: [string, string, boolean][] = [
    ['inference/workers/+', 'inference/workers/w1', true],
    ['inference/workers/+', 'inference/workers/w1/extra', false],
    ['inference/workers/+', 'inference/workers', false],
    ['inference/#', 'inference', true],
    ['inference/#', 'inference/events/job-1', true],
    ['#', '$SYS/broker/uptime', false],
    ['+/broker/uptime', '$SYS/broker/uptime', false],
    ['$SYS/#', '$SYS/broker/uptime', true],
    ['a/b', 'a/b', true],
    ['a/b', 'a/c', false],
  ];
  for (const [filter, topic, matches] of cases) {
    test(`${filter} ${matches ? 'matches' : 'does not match'} ${topic}`, () => {
      assert.equal(topicMatches(filter, topic), matches);
    });
  }
  test('a pattern with no fixed first level reaches every topic', () => {
    assert.equal(isBroadPattern('#'), true);
    assert.equal(isBroadPattern('+/x'), true);
    assert.equal(isBroadPattern('inference/#'), false);
  });
});

describe('durations (parseDurationSeconds)', () => {
  const cases: [string | number, number | undefined][] = [
    ['5', 5],
    ['0.5', 0.5],
    [' 90 ', 90],
    ['90s', 90],
    ['500ms', 0.5],
    ['5m', 300],
    ['1h', 3600],
    ['2 days', 172_800],
    [7, 7],
    ['soon', undefined],
    ['', undefined],
    ['-5x', undefined],
  ];
  for (const [text, seconds] of cases) {
    test(`${JSON.stringify(text)} is ${seconds ?? 'not a duration'}`, () => {
      assert.equal(parseDurationSeconds(text), seconds);
    });
  }
});

describe('the retry policy', () => {
  test('exponential backoff with equal jitter: between half and all of base × 2^(n-1), capped', () => {
    const delay = exponentialBackoff(1000, 5000);
    for (let round = 0; round < 200; round += 1) {
      for (const [retry, ceiling] of [
        [1, 1000],
        [2, 2000],
        [3, 4000],
        [4, 5000],
        [10, 5000],
      ] as const) {
        const value = delay(retry);
        assert.ok(value >= ceiling / 2 && value <= ceiling, `retry ${retry}: ${value}`);
      }
    }
  });
  const noDelay = () => 250;
  test('a retryable failure is retried while the budget lasts', () => {
    assert.deepEqual(
      decideAttemptEnd(
        { retryCount: 1, maxRetries: 3 },
        { message: 'flaky', retryable: true },
        noDelay,
        1000,
      ),
      { kind: 'retry', retryCount: 2, delayMs: 250, notBefore: 1250, lastError: 'flaky' },
    );
  });
  test('the last attempt ends the job, naming how many there were', () => {
    assert.deepEqual(
      decideAttemptEnd(
        { retryCount: 3, maxRetries: 3 },
        { message: 'flaky', retryable: true },
        noDelay,
        1000,
      ),
      { kind: 'fail', errorMessage: 'Failed after 4 attempts; last error: flaky' },
    );
    assert.deepEqual(
      decideAttemptEnd({ retryCount: 0, maxRetries: 0 }, { message: 'once', retryable: true }, noDelay, 0),
      { kind: 'fail', errorMessage: 'Failed after 1 attempt; last error: once' },
    );
  });
  test('a failure no retry helps ends the job at once, in its own words', () => {
    assert.deepEqual(
      decideAttemptEnd(
        { retryCount: 0, maxRetries: 3 },
        { message: 'bad input', retryable: false },
        noDelay,
        0,
      ),
      { kind: 'fail', errorMessage: 'bad input' },
    );
  });
  test('a cancel ends the job at once, marked so that the output of the attempt is removed', () => {
    assert.deepEqual(decideAttemptEnd({ retryCount: 0, maxRetries: 3 }, CANCELLED_FAILURE, noDelay, 0), {
      kind: 'fail',
      errorMessage: 'cancelled',
      cancelled: true,
    });
    assert.deepEqual(
      outcomeOf(decideAttemptEnd({ retryCount: 0, maxRetries: 3 }, new JobCancelledError(), noDelay, 0)),
      {
        kind: 'failed',
        errorMessage: 'cancelled',
        cancelled: true,
      },
    );
  });
  test('final messages are bounded, keeping head and tail', () => {
    const end = decideAttemptEnd(
      { retryCount: 0, maxRetries: 0 },
      { message: `start ${'x'.repeat(10_000)} end`, retryable: false },
      noDelay,
      0,
    );
    assert.equal(end.kind, 'fail');
    if (end.kind === 'fail') {
      assert.ok(end.errorMessage.length <= 4096);
      assert.match(end.errorMessage, /^start x+ …\[5914 of 10010 characters cut\]… x+ end$/);
    }
    assert.equal(boundText('short', 4096), 'short');
  });
  test('recovery says why a job was taken back', () => {
    assert.match(
      recoveryReason({ status: 'processing', workerId: 'w1', leaseExpiresAt: 5 }, 3_600_000),
      /worker w1 stopped renewing its lease/,
    );
    assert.match(
      recoveryReason({ status: 'claimed', workerId: null, leaseExpiresAt: null }, 3_600_000),
      /left in 'claimed' with no lease for over 3600 s/,
    );
  });
  test('progress while running is a whole number from 0 to 99', () => {
    assert.deepEqual([-5, 0, 42.9, 99.5, 100, 250, Number.NaN].map(boundProgress), [0, 0, 42, 99, 99, 99, 0]);
  });
});

describe('how a runner exit is described', () => {
  const exit = (exitCode: number | undefined, signal: string | undefined, stderrTail = '') => ({
    exitCode,
    signal,
    stderrTail,
  });
  test('an exit code, a signal, SIGKILL, and running out of memory', () => {
    assert.equal(describeExit(exit(3, undefined)), 'exit code 3');
    assert.equal(describeExit(exit(undefined, 'SIGTERM')), 'killed by SIGTERM');
    assert.match(
      describeExit(exit(undefined, 'SIGKILL')),
      /^killed by SIGKILL \(out of memory, or killed from outside\)$/,
    );
    assert.match(
      describeExit(
        exit(
          134,
          'SIGABRT',
          'FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory',
        ),
      ),
      /^ran out of memory; stderr: FATAL ERROR/,
    );
  });
  test('a runner the daemon killed for what it did says so', () => {
    assert.equal(
      describeExit({ ...exit(undefined, 'SIGKILL'), killedBecause: 'malformed message from the runner' }),
      'killed by the daemon: malformed message from the runner',
    );
  });
  test('the last five lines of stderr, at most 600 characters', () => {
    const tail = Array.from({ length: 8 }, (_, index) => `line ${index}`).join('\n');
    assert.equal(
      describeExit(exit(1, undefined, tail)),
      `exit code 1; stderr: ${tail.split('\n').slice(-5).join('\n')}`,
    );
    assert.ok(describeExit(exit(1, undefined, 'y'.repeat(5000))).length < 700);
  });
});

describe('runner messages (parseMessage)', () => {
  const finished = (outcome: Record<string, unknown>) => ({ type: 'finished', jobId: 'j', outcome });
  test('a field the other end does not know is an error naming it, not a value dropped', () => {
    const parsed = parseMessage(
      RunnerToDaemonSchema,
      finished({ kind: 'failed', errorMessage: 'x', retried: true }),
      'runner',
    );
    assert.ok(parsed instanceof Error);
    assert.match(
      parsed.message,
      /malformed message from the runner \(type "finished"\) at outcome: .*"retried"/,
    );
  });
  test('a cancelled failure keeps its mark across the channel', () => {
    assert.deepEqual(
      parseMessage(
        RunnerToDaemonSchema,
        finished({ kind: 'failed', errorMessage: 'cancelled', cancelled: true }),
        'runner',
      ),
      finished({ kind: 'failed', errorMessage: 'cancelled', cancelled: true }),
    );
  });
  test("input files keep the API's own fields", () => {
    const job = {
      jobId: 'j',
      taskType: 't',
      attempt: 1,
      inputFiles: [{ path: '/a.jpg', content_type: 'image/jpeg' }],
      lease: { jobId: 'j', token: 'k' },
      leaseValidForMs: 1000,
    };
    assert.deepEqual(parseMessage(DaemonToRunnerSchema, { type: 'run', job }, 'daemon'), {
      type: 'run',
      job,
    });
  });
});

describe('database URLs in logs and messages (redactedUrl)', () => {
  test('hides the password in the userinfo and in the query, whatever the driver prefix', () => {
    assert.equal(redactedUrl('postgresql://app:hunter2@db:5432/media'), 'postgresql://app:***@db:5432/media');
    assert.equal(
      redactedUrl('postgres+psycopg2://app@db/media?password=hunter2&sslmode=require&SSLPASSWORD=key-pass'),
      'postgresql://app@db/media?password=***&sslmode=require&SSLPASSWORD=***',
    );
    assert.equal(redactedUrl('postgresql://app:%40t@[::1/media'), 'postgresql://…');
  });
});
