export { aclUser } from './acl-user.js';
export { registerForCleanup, stopAllRedis, type Stoppable } from './cleanup.js';
export { CommandMonitor, commandStats, diffStats, type MonitoredCommand } from './command-monitor.js';
export { CLUSTER_BUS_OFFSET, freePort, type FreePortOptions } from './free-port.js';
export {
  HARNESS_CONNECTION_NAME,
  closeClient,
  createHarnessClient,
  isHarnessAddress,
  trackHarnessConnection,
} from './harness-connections.js';
export {
  RedisClusterProcess,
  type ClusterNodeAddress,
  type RedisClusterOptions,
} from './redis-cluster.process.js';
export { RedisServerProcess, type RedisEndpoint, type RedisServerOptions } from './redis-server.process.js';
export { generateTlsCertificates, type TlsCertificates } from './tls-certificates.js';
