/** Finds compute modules: every folder of the modules directory that holds a manifest. */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { MAX_TIMER_S } from '../config/timer-limit.js';
import { StartupError } from '../errors.js';
import type { ModuleManifest, ModuleRun, ModuleWarmUp } from './module-contract.js';

export interface DiscoveredModule {
  name: string;
  directory: string;
  manifest: ModuleManifest;
}

const MODULE_NAME = /^[a-z][a-z0-9_]*$/;

export async function discoverModules(modulesDir: string): Promise<Map<string, DiscoveredModule>> {
  if (!fs.existsSync(modulesDir)) throw new StartupError(`modules directory ${modulesDir} does not exist`);
  const modules = new Map<string, DiscoveredModule>();
  const entries = fs
    .readdirSync(modulesDir, { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name));
  for (const entry of entries) {
    if (!entry.isDirectory() || !MODULE_NAME.test(entry.name)) continue;
    const directory = path.join(modulesDir, entry.name);
    const manifestPath = path.join(directory, 'manifest.js');
    if (!fs.existsSync(manifestPath)) continue;
    const manifest = await loadManifest(directory);
    checkManifest(entry.name, manifest);
    modules.set(entry.name, { name: entry.name, directory, manifest });
  }
  return modules;
}

/** The modules named by --tasks, or all of them; an unknown name lists the available ones. */
export function selectModules(
  available: Map<string, DiscoveredModule>,
  requested: readonly string[] | undefined,
): DiscoveredModule[] {
  if (requested === undefined || requested.length === 0) return [...available.values()];
  const unknown = requested.filter((name) => !available.has(name));
  if (unknown.length > 0) {
    throw new StartupError(
      `unknown task type(s): ${unknown.join(', ')}; available: ${[...available.keys()].join(', ') || '(none)'}`,
    );
  }
  return [...new Set(requested)].map((name) => available.get(name) as DiscoveredModule);
}

export async function loadModuleRun(module: {
  directory: string;
  name: string;
}): Promise<{ run: ModuleRun<unknown>; warmUp: ModuleWarmUp | undefined }> {
  const file = path.join(module.directory, 'run.js');
  const exported = (await import(pathToFileURL(file).href)) as { default?: unknown; warmUp?: unknown };
  if (typeof exported.default !== 'function') {
    throw new StartupError(`module ${module.name}: run.js has no default export function`);
  }
  const warmUp = typeof exported.warmUp === 'function' ? (exported.warmUp as ModuleWarmUp) : undefined;
  return { run: exported.default as ModuleRun<unknown>, warmUp };
}

export function loadManifest(directory: string): Promise<ModuleManifest> {
  return importDefault<ModuleManifest>(path.join(directory, 'manifest.js'));
}

async function importDefault<T>(file: string): Promise<T> {
  const imported = (await import(pathToFileURL(file).href)) as { default?: T };
  if (imported.default === undefined) throw new StartupError(`${file} has no default export`);
  return imported.default;
}

function checkManifest(name: string, manifest: ModuleManifest): void {
  const problems: string[] = [];
  if (typeof manifest.description !== 'string') problems.push('description is not a string');
  if (typeof manifest.params?.safeParse !== 'function') problems.push('params is not a zod schema');
  const timeout = manifest.defaultTimeoutS;
  if (!(typeof timeout === 'number' && timeout > 0 && timeout <= MAX_TIMER_S)) {
    problems.push(`defaultTimeoutS is not a number of seconds > 0 and <= ${MAX_TIMER_S}`);
  }
  for (const [key, setting] of Object.entries(manifest.settings ?? {})) {
    const valid =
      typeof setting === 'object' &&
      setting !== null &&
      typeof setting.flag === 'string' &&
      /^--[a-z][a-z0-9-]*$/.test(setting.flag) &&
      (setting.env === undefined || /^[A-Z][A-Z0-9_]*$/.test(setting.env)) &&
      typeof setting.accepts === 'string' &&
      typeof setting.schema?.safeParse === 'function';
    if (!valid) {
      problems.push(
        `settings.${key} needs a flag (--lower-case), an optional VARIABLE, accepts text and a zod schema`,
      );
    }
  }
  if (problems.length > 0) throw new StartupError(`module ${name}: manifest invalid: ${problems.join('; ')}`);
}
