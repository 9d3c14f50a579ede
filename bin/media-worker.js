#!/usr/bin/env node
// The `media-worker` command: the compiled CLI in dist/, or a clear word when it is not built yet.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/worker/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  console.error(
    'media-worker: the worker is not built (dist/ is missing). Run `npm ci && npm run build` in ' +
      `${fileURLToPath(new URL('..', import.meta.url))}, or start it with ./start_worker.sh, which builds it.`,
  );
  process.exit(2);
}
await import(cli.href);
