// The PostgreSQL server the tests use: TEST_DATABASE_URL, by default the local one on
// 127.0.0.1:5432 (user postgres, no password). Where nothing answers on a local address, the
// server is installed (Debian's package) when missing and a cluster of the tests' own, trusting
// local connections, is started there. It is left running, as a service would be.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const pg = require('pg');

const DEFAULT_URL = 'postgresql://postgres@127.0.0.1:5432/postgres';
const CLUSTER_DIR = '/var/tmp/media-worker-test-postgres';

async function reach(url) {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on('error', () => {});
  try {
    await client.connect();
    const { rows } = await client.query('SHOW server_version');
    return { ok: true, version: rows[0].server_version };
  } catch (error) {
    return { ok: false, code: error.code, message: error.message };
  } finally {
    await client.end().catch(() => {});
  }
}

const serverBin = () => {
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  return versions
    .map((v) => path.join(root, v, 'bin'))
    .find((bin) => fs.existsSync(path.join(bin, 'pg_ctl')));
};

export async function ensurePostgres({ run, install }) {
  const url = process.env.TEST_DATABASE_URL ?? DEFAULT_URL;
  let reached = await reach(url);
  if (reached.ok) return console.log(`PostgreSQL ${reached.version} answers at ${redact(url)}`);
  const { hostname, port } = new URL(url);
  const local = hostname === '127.0.0.1' || hostname === 'localhost';
  if (!local || reached.code !== 'ECONNREFUSED') {
    throw new Error(
      `the test database server ${redact(url)} cannot be used: ${reached.message}. ` +
        'Set TEST_DATABASE_URL to a server where the user may create databases.',
    );
  }
  if (!serverBin()) install(['postgresql']);
  const bin = serverBin();
  if (!bin) throw new Error('installing postgresql gave no server binaries under /usr/lib/postgresql');
  // The package may have started a cluster of its own on that port: use it if it lets us in.
  reached = await reach(url);
  if (reached.ok) return console.log(`PostgreSQL ${reached.version} answers at ${redact(url)}`);
  const asServerUser = process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--'] : [];
  const dataDir = path.join(CLUSTER_DIR, `port-${port || 5432}`);
  if (!fs.existsSync(path.join(dataDir, 'PG_VERSION'))) {
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    if (asServerUser.length > 0) run(['chown', '-R', 'postgres:postgres', CLUSTER_DIR]);
    run([
      ...asServerUser,
      path.join(bin, 'initdb'),
      '-D',
      dataDir,
      '-A',
      'trust',
      '-U',
      'postgres',
      '-E',
      'UTF8',
    ]);
  }
  console.log(
    `starting a PostgreSQL server for the tests on ${hostname}:${port || 5432} (data in ${dataDir})`,
  );
  run([
    ...asServerUser,
    path.join(bin, 'pg_ctl'),
    '-D',
    dataDir,
    '-o',
    `-p ${port || 5432} -c listen_addresses=${hostname === 'localhost' ? 'localhost' : '127.0.0.1'} -k ${dataDir}`,
    '-l',
    path.join(dataDir, 'server.log'),
    '-w',
    'start',
  ]);
  reached = await reach(url);
  if (!reached.ok)
    throw new Error(`the PostgreSQL server started for the tests does not answer: ${reached.message}`);
  console.log(`PostgreSQL ${reached.version} answers at ${redact(url)}`);
}

function redact(url) {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}
