/**
 * Start-up checks of the modules a daemon will serve (a module's `preflight`: is ffmpeg there, which
 * version). A module the operator asked for by name must pass, or the daemon does not start; when
 * no names were given (every discovered module), one that fails is left out with a warning, so a
 * machine without ffmpeg still serves the image modules.
 */
import type { Logger } from 'pino';
import { StartupError } from '../errors.js';
import type { DiscoveredModule } from './discover-modules.js';
import type { ModuleSettingValues, ModuleVersions } from './module-contract.js';

export interface ReadyModules {
  modules: DiscoveredModule[];
  versions: Readonly<Record<string, ModuleVersions>>;
}

export async function preflightModules(
  selected: readonly DiscoveredModule[],
  settings: Readonly<Record<string, ModuleSettingValues>>,
  options: { requestedByName: boolean; log: Logger },
): Promise<ReadyModules> {
  const checks = await Promise.all(
    selected.map(async (module) => {
      try {
        return { module, versions: (await module.manifest.preflight?.(settings[module.name] ?? {})) ?? {} };
      } catch (error) {
        return { module, problem: error instanceof Error ? error.message : String(error) };
      }
    }),
  );
  const modules: DiscoveredModule[] = [];
  const versions: Record<string, ModuleVersions> = {};
  for (const check of checks) {
    if ('problem' in check) {
      if (options.requestedByName) throw new StartupError(`module ${check.module.name}: ${check.problem}`);
      options.log.warn(
        { task_type: check.module.name, problem: check.problem },
        'module left out: its preflight failed',
      );
      continue;
    }
    modules.push(check.module);
    if (Object.keys(check.versions).length > 0) {
      versions[check.module.name] = check.versions;
      options.log.info({ task_type: check.module.name, versions: check.versions }, 'module ready');
    }
  }
  if (modules.length === 0) throw new StartupError('no module passed its start-up check');
  return { modules, versions };
}
