/**
 * A PostgreSQL database per test on the server TEST_DATABASE_URL names (by default the local one;
 * test/setup/check-environment.mjs installs and starts it where none answers), dropped afterwards.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { selfSignedCertificate } from './tls.js';

const execFileAsync = promisify(execFile);

export const TEST_SERVER_URL =
  process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  /** The new database's URL. */
  url: string;
  name: string;
  drop(): Promise<void>;
}

/** The URL of another database on the same server. */
export function databaseUrlFor(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

async function onServer<T>(serverUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl });
  client.on('error', () => {});
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export async function createTestDatabase(serverUrl = TEST_SERVER_URL): Promise<TestDatabase> {
  const name = `media_worker_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await onServer(serverUrl, (client) => client.query(`CREATE DATABASE ${name}`));
  return {
    url: databaseUrlFor(serverUrl, name),
    name,
    drop: () =>
      onServer(serverUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(
        () => {},
      ),
  };
}

/** A PostgreSQL server of a test's own, on a free port, for what the shared one must not suffer (a restart). */
export interface PrivateServer {
  url: string;
  /** Shuts the server down (fast: sessions are ended, as at a restart). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it for good and removes its files. */
  remove(): Promise<void>;
}

function postgresBinaries(): string {
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  const found = versions
    .map((version) => path.join(root, version, 'bin'))
    .find((bin) => fs.existsSync(path.join(bin, 'pg_ctl')));
  if (!found) throw new Error(`no PostgreSQL server binaries under ${root} (apt-get install postgresql)`);
  return found;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

export interface PrivateServerOptions {
  /** Serve TLS only, with a self-signed certificate for 127.0.0.1 (its path is `certificate`). */
  tls?: boolean;
}

export async function startPrivateServer({
  tls = false,
}: PrivateServerOptions = {}): Promise<PrivateServer & { certificate: string }> {
  const bin = postgresBinaries();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'media-worker-pg-'));
  const dataDir = path.join(dir, 'data');
  const port = await freePort();
  // The server refuses to run as root: as root, run it as the postgres account.
  const asServerUser = process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--'] : [];
  if (asServerUser.length > 0) {
    const { uid, gid } = userIds('postgres');
    fs.chownSync(dir, uid, gid);
  }
  const run = (command: string, args: readonly string[]) => {
    const [file, ...rest] = [...asServerUser, path.join(bin, command), ...args];
    return execFileAsync(file as string, rest, { cwd: dir });
  };
  await run('initdb', ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  const certificate = path.join(dir, 'server.crt');
  let options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`;
  if (tls) {
    const key = path.join(dataDir, 'server.key');
    selfSignedCertificate(certificate, key);
    if (asServerUser.length > 0) {
      const { uid, gid } = userIds('postgres');
      fs.chownSync(key, uid, gid);
      fs.chownSync(certificate, uid, gid);
    }
    fs.chmodSync(key, 0o600);
    // Only TLS connections are let in.
    fs.writeFileSync(
      path.join(dataDir, 'pg_hba.conf'),
      'hostssl all all 127.0.0.1/32 trust\nlocal all all trust\n',
    );
    options += ` -c ssl=on -c ssl_cert_file=${certificate} -c ssl_key_file=${key}`;
  }
  const pgCtl = (...args: string[]) =>
    run('pg_ctl', ['-D', dataDir, '-o', options, '-l', path.join(dir, 'server.log'), '-w', ...args]);
  await pgCtl('start');
  return {
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    certificate,
    stop: () => pgCtl('-m', 'fast', 'stop').then(() => {}),
    start: () => pgCtl('start').then(() => {}),
    async remove() {
      await pgCtl('-m', 'immediate', 'stop').catch(() => {});
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function userIds(name: string): { uid: number; gid: number } {
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((entry) => entry.startsWith(`${name}:`));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) throw new Error(`no user ${name} on this machine`);
  return { uid: Number(uid), gid: Number(gid) };
}
