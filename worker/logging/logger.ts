/** pino JSON on stdout; human-readable through pino-pretty when stdout is a terminal. */
import { type Logger, pino } from 'pino';

export type { Logger };

export function createLogger(level: string, base: Record<string, unknown> = {}): Logger {
  const options = { level, base: { pid: process.pid, ...base } };
  if (process.stdout.isTTY) {
    return pino({
      ...options,
      transport: { target: 'pino-pretty', options: { colorize: true, destination: 1 } },
    });
  }
  return pino(options, pino.destination({ dest: 1, sync: false }));
}
