import type { Command } from 'commander';
import { ConfigError } from '../config/config.js';
import { StartupError } from '../errors.js';
import { UsageError } from './usage-error.js';

/** Runs a command line; a setup or usage mistake (bad setting, unknown module, bad --params…) prints one line and exits 2. */
export async function runProgram(program: Command): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (error) {
    if (error instanceof ConfigError || error instanceof StartupError || error instanceof UsageError) {
      console.error(`${program.name()}: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
}
