/**
 * The settings compute modules declare in their manifests (ffmpeg_render: FFMPEG_BINARY,
 * FFPROBE_BINARY, GPU_DEVICE): gathered into one table for the command line, and parsed like the
 * worker's own settings (flag, else environment variable, else the schema's default).
 */
import { StartupError } from '../errors.js';
import type { DiscoveredModule } from '../modules/discover-modules.js';
import type { ModuleSetting, ModuleSettingValues } from '../modules/module-contract.js';
import { type Flags, flagAttribute, parseSetting, SETTINGS, type Setting, shownDefault } from './config.js';

export interface DeclaredSetting {
  definition: ModuleSetting;
  /** The modules that declare it (two may share one, as long as they declare it alike). */
  modules: string[];
}

/** Every module setting once, by flag; a clash with the worker's own flags or between modules is refused. */
export function declaredSettings(modules: Iterable<DiscoveredModule>): DeclaredSetting[] {
  const workerFlags = new Set(
    Object.values(SETTINGS).flatMap((group) =>
      Object.values(group).map((definition: Setting) => definition.flag),
    ),
  );
  const byFlag = new Map<string, DeclaredSetting>();
  for (const module of modules) {
    for (const definition of Object.values(module.manifest.settings ?? {}) as ModuleSetting[]) {
      if (workerFlags.has(definition.flag)) {
        throw new StartupError(
          `module ${module.name}: setting ${definition.flag} is one of the worker's own`,
        );
      }
      const known = byFlag.get(definition.flag);
      if (!known) {
        byFlag.set(definition.flag, { definition, modules: [module.name] });
        continue;
      }
      if (known.definition.env !== definition.env) {
        throw new StartupError(
          `modules ${known.modules.join(', ')} and ${module.name} declare ${definition.flag} with different variables (${known.definition.env}, ${definition.env})`,
        );
      }
      known.modules.push(module.name);
    }
  }
  return [...byFlag.values()].sort((a, b) => a.definition.flag.localeCompare(b.definition.flag));
}

/** Each module's settings, parsed; a bad value is a ConfigError naming its flag or variable. */
export function loadModuleSettings(
  modules: readonly DiscoveredModule[],
  flags: Flags,
  env: NodeJS.ProcessEnv,
): Record<string, ModuleSettingValues> {
  declaredSettings(modules); // refuses a table that clashes, as --help could not show it
  const values: Record<string, ModuleSettingValues> = {};
  for (const module of modules) {
    const own: Record<string, unknown> = {};
    for (const [key, definition] of Object.entries(module.manifest.settings ?? {}) as [
      string,
      ModuleSetting,
    ][]) {
      own[key] = parseSetting(definition, flags[flagAttribute(definition.flag)], env);
    }
    values[module.name] = own;
  }
  return values;
}

/** The modules' settings as the README's table shows them (`media-worker modules --markdown`). */
export function moduleSettingsMarkdown(declared: readonly DeclaredSetting[]): string {
  const rows = declared.map(
    ({ definition, modules }) =>
      `| \`${definition.env ?? '—'}\` | \`${definition.flag}\` | ${shownDefault(definition) === undefined ? '—' : `\`${shownDefault(definition)}\``} | ${definition.accepts} (${modules.join(', ')}) |`,
  );
  return ['| Variable | Flag | Default | Meaning |', '|---|---|---|---|', ...rows].join('\n');
}
