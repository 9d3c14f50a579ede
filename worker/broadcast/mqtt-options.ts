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

export function brokerAddress(settings: Config['broker']): BrokerAddress {
  const isUrl = /^(mqtts?|tcp|ssl|tls):\/\//i.test(settings.address);
  const parsed = isUrl ? new URL(settings.address) : undefined;
  const tls = settings.useTls || (parsed !== undefined && /^(mqtts|ssl|tls):$/i.test(parsed.protocol));
  const host = parsed?.hostname || settings.address;
  const port = parsed?.port ? Number(parsed.port) : settings.port;
  const username = settings.username ?? (parsed?.username ? decodeURIComponent(parsed.username) : undefined);
  const password = settings.password ?? (parsed?.password ? decodeURIComponent(parsed.password) : undefined);
  const options: IClientOptions = {};
  if (username !== undefined) options.username = username;
  if (password !== undefined) options.password = password;
  if (tls) {
    options.rejectUnauthorized = !settings.tlsInsecure;
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
    const ca = read(settings.caFile, 'MQTT_CA_FILE');
    const cert = read(settings.certFile, 'MQTT_CERT_FILE');
    const key = read(settings.keyFile, 'MQTT_KEY_FILE');
    if (ca) options.ca = ca;
    if (cert) options.cert = cert;
    if (key) options.key = key;
  }
  const scheme = tls ? 'mqtts' : 'mqtt';
  const hostPart = host.includes(':') ? `[${host}]` : host;
  return { url: `${scheme}://${hostPart}:${port}`, options };
}
