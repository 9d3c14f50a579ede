/**
 * Messages between the daemon and a runner process over the Node IPC channel. Each end parses what
 * it receives with the schemas below, so a malformed message is an error that says what was wrong
 * with it, not a job that silently never starts.
 */
import { z } from 'zod';
import type { FailureOutcome, Lease } from '../store/job-store.js';
import type { InputFile, OutputFile } from '../store/schema.js';

/**
 * The daemon's first message to a new runner. It travels over the IPC channel, never as an
 * argument: it holds the database URL, and a process's arguments are public (`ps`).
 */
export const RunnerInitSchema = z.strictObject({
  moduleName: z.string(),
  moduleDirectory: z.string(),
  databaseUrl: z.string(),
  storageRoot: z.string(),
  workerId: z.string(),
  logLevel: z.string(),
  retryBackoffMs: z.number(),
  busyTimeoutMs: z.number(),
  retryBackoffMaxMs: z.number(),
  limits: z.strictObject({ maxInputPixels: z.number(), maxOutputPixels: z.number() }),
  /** 'job': a job reads only under its own `jobs/<job_id>/`; 'root': anywhere under the storage root. */
  inputScope: z.enum(['job', 'root']),
  /** The module's own settings (its manifest's `settings`), parsed by the daemon. */
  settings: z.record(z.string(), z.unknown()),
});
export type RunnerInit = z.infer<typeof RunnerInitSchema>;
/** The first message a runner gets, and the only one before `ready`. */
export const InitMessageSchema = z.strictObject({ type: z.literal('init'), init: RunnerInitSchema });
export type InitMessage = z.infer<typeof InitMessageSchema>;

export interface RunnerJob {
  jobId: string;
  taskType: string;
  attempt: number;
  inputFiles: InputFile[];
  lease: Lease;
  /** How long the lease is still valid, counted when the message was sent (see LeaseClock). */
  leaseValidForMs: number;
}

export type DaemonToRunner =
  | { type: 'run'; job: RunnerJob }
  /** The daemon renewed the job's lease: it is valid for this long from when this was sent. */
  | { type: 'lease'; jobId: string; validForMs: number };

export type RunnerOutcome =
  | { kind: 'completed'; outputFiles: OutputFile[] }
  | FailureOutcome
  /** The worker, not the job, failed (database or storage); the daemon decides what follows. */
  | { kind: 'worker-fault'; reason: string }
  /** The lease ran out with no renewal from the daemon: the runner gave up and kills itself. */
  | { kind: 'lease-expired' };

export type RunnerToDaemon =
  | { type: 'ready' }
  | { type: 'started'; jobId: string }
  | { type: 'progress'; jobId: string; progress: number }
  | { type: 'finished'; jobId: string; outcome: RunnerOutcome; message?: string };

const LeaseSchema = z.strictObject({ jobId: z.string(), token: z.string() });
const InputFileSchema = z.looseObject({
  path: z.string(),
  filename: z.string().exactOptional(),
  size: z.number().exactOptional(),
  hash: z.string().exactOptional(),
  metadata: z.record(z.string(), z.unknown()).exactOptional(),
});
// What a module returns is written to the row as it is, so a field of its own crosses too.
const OutputFileSchema = z.looseObject({
  file_id: z.string(),
  filename: z.string(),
  metadata: z.record(z.string(), z.unknown()),
});

// Strict objects: a field one end sends and the other does not know is an error that names it,
// not a value dropped on the way (the two ends are one build; a difference is a bug).
export const DaemonToRunnerSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('run'),
    job: z.strictObject({
      jobId: z.string(),
      taskType: z.string(),
      attempt: z.number().int().positive(),
      inputFiles: z.array(InputFileSchema),
      lease: LeaseSchema,
      leaseValidForMs: z.number(),
    }),
  }),
  z.strictObject({ type: z.literal('lease'), jobId: z.string(), validForMs: z.number() }),
]);

const RunnerOutcomeSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('completed'), outputFiles: z.array(OutputFileSchema) }),
  z.strictObject({ kind: z.literal('retrying'), nextAttempt: z.number(), delayMs: z.number() }),
  z.strictObject({
    kind: z.literal('failed'),
    errorMessage: z.string(),
    cancelled: z.literal(true).exactOptional(),
  }),
  z.strictObject({ kind: z.literal('fenced') }),
  z.strictObject({ kind: z.literal('worker-fault'), reason: z.string() }),
  z.strictObject({ kind: z.literal('lease-expired') }),
]);

export const RunnerToDaemonSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('ready') }),
  z.strictObject({ type: z.literal('started'), jobId: z.string() }),
  z.strictObject({ type: z.literal('progress'), jobId: z.string(), progress: z.number() }),
  z.strictObject({
    type: z.literal('finished'),
    jobId: z.string(),
    outcome: RunnerOutcomeSchema,
    message: z.string().exactOptional(),
  }),
]);

/**
 * Checked when the project is built: each schema parses exactly its message type, every field and
 * whether it is optional, so that neither can gain a field the other lacks. Input and output files
 * are the loose objects (rows and modules may add fields of their own): their known fields are
 * compared.
 */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type KnownFields<T> = { [K in keyof T as string extends K ? never : K]: T[K] };
type ParsedJob = Extract<z.output<typeof DaemonToRunnerSchema>, { type: 'run' }>['job'];
type ParsedLease = Extract<z.output<typeof DaemonToRunnerSchema>, { type: 'lease' }>;
type ParsedOutcome = z.output<typeof RunnerOutcomeSchema>;
type Completed<T> = Extract<T, { kind: 'completed' }>;
type ParsedRunnerMessage = z.output<typeof RunnerToDaemonSchema>;
type Finished<T> = Extract<T, { type: 'finished' }>;
const schemasMatchTypes: [
  Same<Omit<ParsedJob, 'inputFiles'>, Omit<RunnerJob, 'inputFiles'>>,
  Same<KnownFields<ParsedJob['inputFiles'][number]>, InputFile>,
  Same<ParsedLease, Extract<DaemonToRunner, { type: 'lease' }>>,
  Same<Exclude<ParsedOutcome, Completed<ParsedOutcome>>, Exclude<RunnerOutcome, Completed<RunnerOutcome>>>,
  Same<Omit<Completed<ParsedOutcome>, 'outputFiles'>, Omit<Completed<RunnerOutcome>, 'outputFiles'>>,
  Same<KnownFields<Completed<ParsedOutcome>['outputFiles'][number]>, OutputFile>,
  Same<
    Exclude<ParsedRunnerMessage, Finished<ParsedRunnerMessage>>,
    Exclude<RunnerToDaemon, Finished<RunnerToDaemon>>
  >,
  Same<Omit<Finished<ParsedRunnerMessage>, 'outcome'>, Omit<Finished<RunnerToDaemon>, 'outcome'>>,
] = [true, true, true, true, true, true, true, true];
void schemasMatchTypes;

/** The message, or an Error naming the direction and what was wrong with it. */
export function parseMessage<T>(schema: z.ZodType<T>, raw: unknown, from: 'daemon' | 'runner'): T | Error {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
  const type =
    typeof raw === 'object' && raw !== null && 'type' in raw
      ? ` (type ${JSON.stringify((raw as { type: unknown }).type).slice(0, 40)})`
      : '';
  return new Error(`malformed message from the ${from}${type}${where}: ${issue?.message ?? 'invalid'}`);
}
