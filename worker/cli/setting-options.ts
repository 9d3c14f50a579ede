/** Commander options generated from the settings table, so --help lists every flag with its env var. */
import { type Command, Option } from 'commander';
import { SETTINGS, type Setting, type SettingKey } from '../config/config.js';
import type { DeclaredSetting } from '../config/module-settings.js';

const BOOLEAN_SETTINGS: ReadonlySet<SettingKey> = new Set([
  'drain',
  'mqttUseTls',
  'mqttTlsInsecure',
  'mqttEventsPerJob',
]);

export function addSettingOptions(command: Command, keys: readonly SettingKey[]): Command {
  for (const key of keys) command.addOption(optionFor(SETTINGS[key], BOOLEAN_SETTINGS.has(key)));
  return command;
}

/** The settings compute modules declare (see config/module-settings.ts), as options of `run`. */
export function addModuleSettingOptions(command: Command, declared: readonly DeclaredSetting[]): Command {
  for (const { definition, modules } of declared) {
    command.addOption(optionFor(definition, false, `for ${modules.join(', ')}`));
  }
  return command;
}

function optionFor(setting: Setting, isSwitch: boolean, note?: string): Option {
  const flags = isSwitch ? setting.flag : `${setting.flag} <value>`;
  // A switch takes no value on the command line; only its variable says true or false.
  const details = [
    isSwitch ? 'a switch: the flag alone turns it on' : setting.accepts,
    setting.env && (isSwitch ? `env ${setting.env} (${setting.accepts})` : `env ${setting.env}`),
    setting.default ? `default ${setting.default}` : undefined,
    note,
  ].filter(Boolean);
  return new Option(flags, details.join('; '));
}

export const STORE_SETTINGS: readonly SettingKey[] = ['serverDir', 'databaseUrl', 'storage', 'logLevel'];
export const MODULE_SETTINGS: readonly SettingKey[] = ['modulesDir'];
export const DASHBOARD_OWN_SETTINGS: readonly SettingKey[] = [
  'dashboardPort',
  'dashboardHost',
  'dashboardToken',
];
export const DAEMON_SETTINGS: readonly SettingKey[] = (Object.keys(SETTINGS) as SettingKey[]).filter(
  (key) => !DASHBOARD_OWN_SETTINGS.includes(key),
);
export const WATCH_SETTINGS: readonly SettingKey[] = [
  'mqttBroker',
  'mqttPort',
  'mqttUsername',
  'mqttPassword',
  'mqttUseTls',
  'mqttCaFile',
  'mqttCertFile',
  'mqttKeyFile',
  'mqttTlsInsecure',
  'mqttTopic',
  'capabilityTopicPrefix',
];
/** `jobs stats` reads the database and, to tell which task types no live worker serves, the broker. */
export const STATS_SETTINGS: readonly SettingKey[] = [...STORE_SETTINGS, 'broadcastType', ...WATCH_SETTINGS];
/** The dashboard: the database and storage root, the broker, and its own address and token. */
export const DASHBOARD_SETTINGS: readonly SettingKey[] = [
  ...DASHBOARD_OWN_SETTINGS,
  ...STORE_SETTINGS,
  'broadcastType',
  ...WATCH_SETTINGS,
];
