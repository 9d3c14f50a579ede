/**
 * Commander options generated from the settings table (worker/config/config.ts), so --help lists
 * every flag with its variable and default; each command takes the groups it reads.
 */
import { type Command, Option } from 'commander';
import { type Setting, type SettingRef, settingOf, settingsIn, shownDefault } from '../config/config.js';
import type { DeclaredSetting } from '../config/module-settings.js';

export function addSettingOptions(command: Command, refs: readonly SettingRef[]): Command {
  for (const ref of refs) command.addOption(optionFor(settingOf(ref)));
  return command;
}

/** The settings compute modules declare (see config/module-settings.ts), as options of `run`. */
export function addModuleSettingOptions(command: Command, declared: readonly DeclaredSetting[]): Command {
  for (const { definition, modules } of declared) {
    command.addOption(optionFor(definition, `for ${modules.join(', ')}`));
  }
  return command;
}

function optionFor(setting: Setting, note?: string): Option {
  const isSwitch = setting.isSwitch === true;
  const flags = isSwitch ? setting.flag : `${setting.flag} <value>`;
  const shown = shownDefault(setting);
  // A switch takes no value on the command line; only its variable says true or false.
  const details = [
    isSwitch ? 'a switch: the flag alone turns it on' : setting.accepts,
    setting.env && (isSwitch ? `env ${setting.env} (${setting.accepts})` : `env ${setting.env}`),
    shown === undefined ? undefined : `default ${shown}`,
    note,
  ].filter(Boolean);
  return new Option(flags, details.join('; '));
}

const MODULES_DIR: SettingRef = { group: 'daemon', name: 'modulesDir' };
const BROADCAST_TYPE: SettingRef = { group: 'broadcast', name: 'type' };

/**
 * What every command that opens the database takes. Only the daemon waits out another process's
 * lock for long (a one-off command fails at once and can be run again), so only it takes
 * --db-busy-timeout; only the daemon falls back between MQTT versions, so only it takes
 * --mqtt-protocol-version (the others speak 3.1.1, which every broker does).
 */
const without = (refs: SettingRef[], ...names: string[]) => refs.filter((ref) => !names.includes(ref.name));
export const STORE_SETTINGS = without(settingsIn('store', 'log'), 'busyTimeout');
export const MODULE_SETTINGS = [MODULES_DIR];
export const DAEMON_SETTINGS = settingsIn('store', 'daemon', 'runner', 'http', 'log', 'broadcast', 'broker');
export const WATCH_SETTINGS = without(settingsIn('broker'), 'protocolVersion');
/** `jobs stats` reads the database and, to tell which task types no live worker serves, the broker. */
export const STATS_SETTINGS = [...STORE_SETTINGS, BROADCAST_TYPE, ...WATCH_SETTINGS];
/** The dashboard: its own address and token, the database and storage root, and the broker. */
export const DASHBOARD_SETTINGS = [...settingsIn('dashboard'), ...STATS_SETTINGS];
