/**
 * A command asked for something that cannot be done as asked: `--params` that is not a JSON object,
 * a task type no module serves, a file that cannot be read, a job that does not exist. Not a
 * configuration problem (that is ConfigError); the command prints one line and exits 2 all the same.
 */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
