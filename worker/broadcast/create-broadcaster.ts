import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { DiscoveredModule } from '../modules/discover-modules.js';
import type { ModuleVersions } from '../modules/module-contract.js';
import { packageVersion } from '../package-version.js';
import { type Broadcaster, NoopBroadcaster } from './broadcaster.js';
import { MqttBroadcaster } from './mqtt-broadcaster.js';
import { brokerAddress } from './mqtt-options.js';

/** The broadcaster BROADCAST_TYPE asks for; `onFatal` stops the worker (a duplicate worker id). */
export function createBroadcaster(
  config: Config,
  modules: readonly DiscoveredModule[],
  moduleVersions: Readonly<Record<string, ModuleVersions>>,
  log: Logger,
  onFatal: (error: Error) => void,
): Broadcaster {
  if (config.broadcastType === 'noop') return new NoopBroadcaster();
  return new MqttBroadcaster({
    address: brokerAddress(config),
    protocolVersion: config.mqttProtocolVersion,
    identity: {
      workerId: config.workerId,
      capabilities: modules.map((module) => module.name),
      moduleVersions,
      concurrency: config.concurrency,
      heartbeatIntervalS: config.heartbeatInterval,
      version: packageVersion(),
      hostname: os.hostname(),
      pid: process.pid,
      startedAt: Date.now(),
      session: randomUUID(),
    },
    capabilityTopicPrefix: config.capabilityTopicPrefix,
    eventTopic: config.mqttTopic,
    eventsPerJob: config.mqttEventsPerJob,
    log: log.child({ component: 'mqtt' }),
    onFatal,
  });
}
