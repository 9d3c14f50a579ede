/**
 * One job as its page shows it: the parameters, inputs and outputs with the URL each file is
 * served at (under /files/), what kind of media each is, and the timings. The row may hold
 * anything (it is the API's data): whatever is not a plain relative path gets no URL.
 */
import path from 'node:path';
import type { JobRecord } from '../store/job-store.js';

export type MediaKind = 'image' | 'video' | 'hls' | 'audio' | 'other';

export interface JobFile {
  name: string;
  /** Where the page fetches it; null when the recorded path cannot be under the storage root. */
  url: string | null;
  kind: MediaKind;
  /** ffmpeg_render's `metadata.role`: main, playlist, segment, file; null when the module sets none. */
  role: string | null;
  metadata: unknown;
}

export interface JobDetails {
  job: JobRecord;
  params: unknown;
  inputs: JobFile[];
  outputs: JobFile[];
  timings: { queuedMs: number | null; runMs: number | null };
}

const KINDS: readonly [RegExp, MediaKind][] = [
  [/\.(jpe?g|png|webp|avif|gif|tiff?|svg)$/i, 'image'],
  [/\.m3u8$/i, 'hls'],
  [/\.(mp4|m4v|webm|mov|mkv)$/i, 'video'],
  [/\.(mp3|m4a|aac|wav|ogg)$/i, 'audio'],
];

export const mediaKind = (name: string): MediaKind =>
  KINDS.find(([pattern]) => pattern.test(name))?.[1] ?? 'other';

/** `/files/<segments>`, or null for a path that is absolute, climbs out, or is empty. */
export function storageUrl(relativePath: string): string | null {
  const segments = relativePath.split('/');
  if (
    relativePath === '' ||
    path.posix.isAbsolute(relativePath) ||
    segments.some(
      (segment) => segment === '' || segment === '.' || segment === '..' || segment.includes('\\'),
    )
  ) {
    return null;
  }
  return `/files/${segments.map(encodeURIComponent).join('/')}`;
}

const objectsIn = (value: unknown): Record<string, unknown>[] =>
  Array.isArray(value)
    ? value.filter((item): item is Record<string, unknown> => typeof item === 'object' && item !== null)
    : [];

export function jobDetails(job: JobRecord): JobDetails {
  const inputs = objectsIn(job.input_files);
  const outputs = objectsIn(job.output_files);
  const text = (value: unknown) => (typeof value === 'string' ? value : '');
  return {
    job,
    params: inputs[0]?.metadata ?? {},
    inputs: inputs.map((input) => {
      const where = text(input.path);
      return {
        name: text(input.filename) || where,
        url: storageUrl(where),
        kind: mediaKind(where),
        role: null,
        metadata: { size: input.size ?? null },
      };
    }),
    outputs: outputs.map((output) => {
      const name = text(output.filename);
      const metadata = output.metadata ?? {};
      const role =
        typeof metadata === 'object' && metadata !== null ? (metadata as { role?: unknown }).role : null;
      return {
        name,
        url: name ? storageUrl(`jobs/${job.job_id}/output/${name}`) : null,
        kind: mediaKind(name),
        role: typeof role === 'string' ? role : null,
        metadata,
      };
    }),
    timings: {
      queuedMs: job.started_at === null ? null : job.started_at - job.created_at,
      runMs: job.started_at === null || job.completed_at === null ? null : job.completed_at - job.started_at,
    },
  };
}
