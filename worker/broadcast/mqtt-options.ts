/** Turns the MQTT settings into mqtt.js connect options: URL or host/port, credentials, TLS. */
import fs from 'node:fs';
import type { IClientOptions } from 'mqtt';
import type { Config } from '../config/config.js';
import { StartupError } from '../errors.js';

export interface BrokerAddress {
  /** scheme://host:port only: credentials go into `options`, so the URL is safe to log. */
  url: string;
  options: IClientOptions;
}

type MqttSettings = Pick<
  Config,
  | 'mqttBroker'
  | 'mqttPort'
  | 'mqttUsername'
  | 'mqttPassword'
  | 'mqttUseTls'
  | 'mqttCaFile'
  | 'mqttCertFile'
  | 'mqttKeyFile'
  | 'mqttTlsInsecure'
>;

export function brokerAddress(settings: MqttSettings): BrokerAddress {
  const isUrl = /^(mqtts?|tcp|ssl|tls):\/\//i.test(settings.mqttBroker);
  const parsed = isUrl ? new URL(settings.mqttBroker) : undefined;
  const tls = settings.mqttUseTls || (parsed !== undefined && /^(mqtts|ssl|tls):$/i.test(parsed.protocol));
  const host = parsed?.hostname || settings.mqttBroker;
  const port = parsed?.port ? Number(parsed.port) : settings.mqttPort;
  const username =
    settings.mqttUsername ?? (parsed?.username ? decodeURIComponent(parsed.username) : undefined);
  const password =
    settings.mqttPassword ?? (parsed?.password ? decodeURIComponent(parsed.password) : undefined);
  const options: IClientOptions = {};
  if (username !== undefined) options.username = username;
  if (password !== undefined) options.password = password;
  if (tls) {
    options.rejectUnauthorized = !settings.mqttTlsInsecure;
    const read = (file: string | undefined, name: string) => {
      if (file === undefined) return undefined;
      try {
        return fs.readFileSync(file);
      } catch (error) {
        throw new StartupError(
          `${name} ${file} cannot be read: ${(error as NodeJS.ErrnoException).code ?? error}`,
        );
      }
    };
    const ca = read(settings.mqttCaFile, 'MQTT_CA_FILE');
    const cert = read(settings.mqttCertFile, 'MQTT_CERT_FILE');
    const key = read(settings.mqttKeyFile, 'MQTT_KEY_FILE');
    if (ca) options.ca = ca;
    if (cert) options.cert = cert;
    if (key) options.key = key;
  }
  const scheme = tls ? 'mqtts' : 'mqtt';
  const hostPart = host.includes(':') ? `[${host}]` : host;
  return { url: `${scheme}://${hostPart}:${port}`, options };
}
