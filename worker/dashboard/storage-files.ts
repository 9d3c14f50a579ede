/**
 * Serves files from under the storage root, and nothing else: each URL segment is decoded on its
 * own, `.`/`..`/separators/NUL are refused, and the real path (symlinks followed) must still lie
 * inside the root's real path. Byte ranges are honoured, so a browser can seek in a video.
 */
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { isWithin } from '../jobs/path-within.js';

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.gif': 'image/gif',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.heic': 'image/heic',
  '.heif': 'image/heif',
  '.svg': 'image/svg+xml',
  '.mp4': 'video/mp4',
  '.m4v': 'video/mp4',
  '.webm': 'video/webm',
  '.mov': 'video/quicktime',
  '.mkv': 'video/x-matroska',
  '.m3u8': 'application/vnd.apple.mpegurl',
  '.ts': 'video/mp2t',
  '.m4s': 'video/iso.segment',
  '.mp3': 'audio/mpeg',
  '.m4a': 'audio/mp4',
  '.aac': 'audio/aac',
  '.wav': 'audio/wav',
  '.ogg': 'audio/ogg',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

/** Types a page may show inline; anything else is offered as a download. */
const INLINE = /^(image|video|audio)\/|^application\/vnd\.apple\.mpegurl$|^text\/plain|^application\/json$/;

export type StorageLookup =
  /** `handle` is open on the file that was checked; the caller reads from it and closes it. */
  | { kind: 'file'; absolutePath: string; handle: fs.promises.FileHandle; size: number; contentType: string }
  | { kind: 'refused'; status: 400 | 403 | 404; reason: string };

/** Finds the file a `/files/…` path names (`encodedPath` is the part after `/files/`, still encoded). */
export async function lookUpStorageFile(storageRoot: string, encodedPath: string): Promise<StorageLookup> {
  const segments: string[] = [];
  for (const encoded of encodedPath.split('/')) {
    let segment: string;
    try {
      segment = decodeURIComponent(encoded);
    } catch {
      return { kind: 'refused', status: 400, reason: 'malformed percent-encoding' };
    }
    if (segment === '' || segment === '.' || segment === '..' || /[/\\\0]/.test(segment)) {
      return {
        kind: 'refused',
        status: 400,
        reason: 'a path segment is empty, "." or "..", or holds a separator',
      };
    }
    segments.push(segment);
  }
  let realRoot: string;
  let realFile: string;
  try {
    realRoot = await fs.promises.realpath(storageRoot);
    realFile = await fs.promises.realpath(path.join(storageRoot, ...segments));
  } catch {
    return { kind: 'refused', status: 404, reason: 'no such file' };
  }
  if (!isWithin(realFile, realRoot)) {
    return { kind: 'refused', status: 403, reason: 'the file lies outside the storage root' };
  }
  // Checked again on the open file itself: a folder swapped for a symlink between the check above
  // and the open cannot lead out of the root.
  const handle = await fs.promises
    .open(realFile, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)
    .catch(() => undefined);
  if (!handle) return { kind: 'refused', status: 404, reason: 'no such file' };
  const opened = await fs.promises.realpath(`/proc/self/fd/${handle.fd}`).catch(() => realFile);
  const stat = await handle.stat().catch(() => undefined);
  if (!isWithin(opened, realRoot) || !stat?.isFile()) {
    await handle.close();
    return isWithin(opened, realRoot)
      ? { kind: 'refused', status: 404, reason: 'not a file' }
      : { kind: 'refused', status: 403, reason: 'the file lies outside the storage root' };
  }
  const contentType = CONTENT_TYPES[path.extname(realFile).toLowerCase()] ?? 'application/octet-stream';
  return { kind: 'file', absolutePath: realFile, handle, size: stat.size, contentType };
}

/** RFC 5987's value encoding: encodeURIComponent leaves ' ( ) * as they are, which it does not allow. */
const rfc5987 = (text: string) =>
  encodeURIComponent(text).replace(/['()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);

/** A single `bytes=` range, resolved against the size; undefined for a header we do not honour. */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | undefined {
  const match = header === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return undefined;
  const [, from = '', to = ''] = match;
  if (from === '' && to === '') return undefined;
  if (size === 0) return 'unsatisfiable';
  if (from === '') {
    const suffix = Number(to);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(from);
  const end = to === '' ? size - 1 : Math.min(Number(to), size - 1);
  if (start >= size || start > end) return 'unsatisfiable';
  return { start, end };
}

export async function sendStorageFile(
  request: http.IncomingMessage,
  response: http.ServerResponse,
  file: Extract<StorageLookup, { kind: 'file' }>,
): Promise<void> {
  const headers: http.OutgoingHttpHeaders = {
    'content-type': file.contentType,
    'accept-ranges': 'bytes',
    'x-content-type-options': 'nosniff',
    // An output is the job's data, not ours: it may be shown, never run (an SVG with a script).
    'content-security-policy': "sandbox; default-src 'none'; img-src 'self'; media-src 'self'",
    'cache-control': 'private, no-cache',
    'content-disposition': `${INLINE.test(file.contentType) ? 'inline' : 'attachment'}; filename*=UTF-8''${rfc5987(path.basename(file.absolutePath))}`,
  };
  const range = parseRange(request.headers.range, file.size);
  if (range === 'unsatisfiable') {
    await file.handle.close();
    response.writeHead(416, { ...headers, 'content-range': `bytes */${file.size}` });
    response.end();
    return;
  }
  const { start, end } = range ?? { start: 0, end: file.size - 1 };
  response.writeHead(range ? 206 : 200, {
    ...headers,
    'content-length': Math.max(0, end - start + 1),
    ...(range ? { 'content-range': `bytes ${start}-${end}/${file.size}` } : {}),
  });
  if (request.method === 'HEAD' || file.size === 0) {
    await file.handle.close();
    response.end();
    return;
  }
  // The stream closes the handle when it ends, fails or is destroyed.
  await pipeline(file.handle.createReadStream({ start, end }), response).catch(() => {
    // the browser went away mid-file (it seeks in a video by dropping one request for another)
  });
}
