/** Commander options generated from the settings table, so --help lists every flag with its env var. */
import { type Command, Option } from 'commander';
import { SETTINGS, type SettingKey } from '../config/config.js';

const BOOLEAN_SETTINGS: ReadonlySet<SettingKey> = new Set([
  'drain',
  'mqttUseTls',
  'mqttTlsInsecure',
  'mqttEventsPerJob',
]);

export function addSettingOptions(command: Command, keys: readonly SettingKey[]): Command {
  for (const key of keys) {
    const setting = SETTINGS[key];
    const takesValue = !BOOLEAN_SETTINGS.has(key);
    const flags = takesValue ? `${setting.flag} <value>` : setting.flag;
    const env = 'env' in setting && setting.env ? setting.env : undefined;
    // A switch takes no value on the command line; only its variable says true or false.
    const details = [
      takesValue ? setting.accepts : 'a switch: the flag alone turns it on',
      env && (takesValue ? `env ${env}` : `env ${env} (${setting.accepts})`),
      'default' in setting && setting.default ? `default ${setting.default}` : undefined,
    ].filter(Boolean);
    command.addOption(new Option(flags, details.join('; ')));
  }
  return command;
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
