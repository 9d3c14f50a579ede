#!/usr/bin/env bash
# Starts the media worker daemon:  ./start_worker.sh --worker-id worker-1 --tasks image_resize,image_conversion
# On first run it installs dependencies and builds; later runs rebuild only when sources changed.
# Every argument is passed to `media-worker run` (see --help).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

required_major=20
required_minor=9
if ! command -v node >/dev/null 2>&1; then
  echo "start_worker.sh: Node.js >= ${required_major}.${required_minor} is required but 'node' is not on PATH." >&2
  echo "Install it from your distribution or https://nodejs.org, then run this script again." >&2
  exit 1
fi
version=$(node -p 'process.versions.node')
major=${version%%.*}; rest=${version#*.}; minor=${rest%%.*}
if (( major < required_major || (major == required_major && minor < required_minor) )); then
  echo "start_worker.sh: Node.js >= ${required_major}.${required_minor} is required; found ${version} ($(command -v node))." >&2
  exit 1
fi

if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "start_worker.sh: installing dependencies (npm ci)..." >&2
  npm ci --no-audit --no-fund >&2
fi

if [[ ! -f dist/.tsbuildinfo ]] || [[ -n "$(find worker compute_modules tsconfig.json package.json -newer dist/.tsbuildinfo -print -quit)" ]]; then
  echo "start_worker.sh: building (tsc)..." >&2
  npx --no-install tsc -p . >&2
fi

exec node dist/worker/cli/main.js run "$@"
