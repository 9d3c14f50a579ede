/**
 * Kysely builds and types every statement; better-sqlite3 prepares each one once. Building a query
 * per call costs more than running it (see docs/design.md), so statements are compiled at
 * store start with named placeholders (`param('jobId')`) and bound by name on each run.
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { CompiledQuery } from 'kysely';

const PLACEHOLDER_PREFIX = '\u0000param:';

/** A named placeholder, typed as the value it stands for so the query builder checks its use. */
export function param<T = never>(name: string): T {
  return `${PLACEHOLDER_PREFIX}${name}` as T;
}

type Binder = { name: string } | { value: unknown };

export interface PreparedStatement<Args extends Record<string, unknown>, Row> {
  /** Whether it returns rows (a SELECT, or a write with RETURNING). */
  reader: boolean;
  run(args: Args): BetterSqlite3.RunResult;
  get(args: Args): Row | undefined;
  all(args: Args): Row[];
}

type NoArgs = Record<string, never>;

export function prepareCompiled<Row, Args extends Record<string, unknown> = NoArgs>(
  sqlite: BetterSqlite3.Database,
  query: CompiledQuery<Row>,
): PreparedStatement<Args, Row> {
  const statement = sqlite.prepare(query.sql);
  const binders: Binder[] = query.parameters.map((parameter) =>
    typeof parameter === 'string' && parameter.startsWith(PLACEHOLDER_PREFIX)
      ? { name: parameter.slice(PLACEHOLDER_PREFIX.length) }
      : { value: parameter },
  );
  const bind = (args: Args): unknown[] =>
    binders.map((binder) => {
      if ('value' in binder) return binder.value;
      const value = args[binder.name];
      if (value === undefined) throw new Error(`missing statement parameter '${binder.name}'`);
      return value;
    });
  const returnsRows = statement.reader;
  return {
    reader: returnsRows,
    run: (args) => statement.run(...bind(args)),
    get: (args) => (returnsRows ? (statement.get(...bind(args)) as Row | undefined) : undefined),
    all: (args) => (returnsRows ? (statement.all(...bind(args)) as Row[]) : []),
  };
}
