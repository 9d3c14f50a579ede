import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { parseDurationSeconds, SETTINGS, shownDefault } from '../../worker/config/config.js';
import { repoFile } from '../helpers/workspace.js';

const UNIT = repoFile('deploy/media-worker.service');
const unitText = fs.readFileSync(UNIT, 'utf8');
const directive = (name: string) => unitText.match(new RegExp(`^${name}=(.*)$`, 'm'))?.[1];

describe('deploy/media-worker.service', () => {
  test('gives a stopping worker its shutdown grace plus its kill grace plus a margin', () => {
    const graceS =
      (parseDurationSeconds(shownDefault(SETTINGS.daemon.shutdownGrace) ?? '') ?? Number.NaN) +
      (parseDurationSeconds(shownDefault(SETTINGS.runner.killGrace) ?? '') ?? Number.NaN);
    const timeoutS = parseDurationSeconds(directive('TimeoutStopSec') ?? '');
    assert.ok(
      timeoutS !== undefined && timeoutS >= graceS + 10,
      `TimeoutStopSec ${timeoutS} s for ${graceS} s of grace`,
    );
    assert.equal(directive('KillMode'), 'mixed', 'only the daemon gets SIGTERM; it stops its runners');
    assert.equal(directive('Restart'), 'on-failure');
    assert.match(directive('EnvironmentFile') ?? '', /^\/etc\/media-worker\//);
    assert.equal(directive('MemoryDenyWriteExecute'), undefined, 'V8 needs writable executable memory');
    assert.match(directive('ExecStart') ?? '', /dist\/worker\/cli\/main\.js run$/);
    assert.equal(directive('ProtectProc'), 'invisible', "other users cannot read its processes' /proc");
  });

  test('passes systemd-analyze verify without a warning (the test setup installs it)', async () => {
    const { stderr, stdout } = await promisify(execFile)('systemd-analyze', ['verify', UNIT]);
    assert.equal(`${stdout}${stderr}`.trim(), '');
  });
});
