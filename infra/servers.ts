// Public API of infra/: the servers this project runs for development and tests.
//
//   import { defaults, endpoints, kafkaBroker } from '../infra/servers.js';
//   await defaults.kafka.start();            // idempotent; waits until healthy
//   new Kafka({ brokers: [endpoints.kafka] })
//
// Every server lives in `${CDC_RUN_DIR:-<repo>/.run}/<name>/` (data dir, log, pid file, config).
// Ports are overridable with environment variables, see infra/README.md.
import { envInt } from './env.js';
import { kafkaBroker, kafkaCluster, type KafkaCluster } from './kafka.js';
import { mariadbServer } from './mariadb.js';
import { postgresServer } from './postgres.js';
import { redisServer } from './redis.js';
import { registryServer } from './registry.js';
import type { Server } from './managed.js';

export { cacheRoot, repoRoot, runRoot } from './env.js';
export { ensureKafkaLibs, KAFKA_VERSION, kafkaBroker, kafkaCluster } from './kafka.js';
export type { KafkaBrokerOptions, KafkaCluster, KafkaClusterOptions } from './kafka.js';
export type { Server, ServerKind, ServerState, ServerStatus, StartOutcome } from './managed.js';
export { mariadbServer } from './mariadb.js';
export type { MariadbOptions } from './mariadb.js';
export { postgresServer } from './postgres.js';
export type { PostgresOptions } from './postgres.js';
export { redisPing, redisServer } from './redis.js';
export type { RedisOptions } from './redis.js';
export { APICURIO_VERSION, ensureRegistryDist, registryServer } from './registry.js';
export type { RegistryOptions } from './registry.js';

/** Ports of the default set (environment overrides applied). */
export const ports = {
  kafka: envInt('CDC_KAFKA_PORT', 19092),
  kafkaController: envInt('CDC_KAFKA_CONTROLLER_PORT', 19093),
  pgSource: envInt('CDC_PG_SOURCE_PORT', 55432),
  pgReplica: envInt('CDC_PG_REPLICA_PORT', 55433),
  mariaSource: envInt('CDC_MARIA_SOURCE_PORT', 33306),
  mariaReplica: envInt('CDC_MARIA_REPLICA_PORT', 33307),
  redis: envInt('CDC_REDIS_PORT', 6379),
  /** Apicurio Registry, Confluent-compatible API at /apis/ccompat/v7. */
  registry: envInt('CDC_REGISTRY_PORT', 18081),
  /** kafka-cluster broker i listens on base + 100*(i-1), controller on that + 1. */
  kafkaClusterBase: envInt('CDC_KAFKA_CLUSTER_BASE_PORT', 19192),
} as const;

/** The default set started by `infra/up`. */
export const defaults = {
  kafka: kafkaBroker({ name: 'kafka', port: ports.kafka, controllerPort: ports.kafkaController }),
  pgSource: postgresServer({ name: 'pg-source', port: ports.pgSource }),
  pgReplica: postgresServer({ name: 'pg-replica', port: ports.pgReplica }),
  mariaSource: mariadbServer({ name: 'maria-source', port: ports.mariaSource, serverId: 1 }),
  mariaReplica: mariadbServer({ name: 'maria-replica', port: ports.mariaReplica, serverId: 2 }),
  redis: redisServer({ name: 'redis', port: ports.redis }),
  registry: registryServer({ name: 'registry', port: ports.registry }),
} as const satisfies Record<string, Server>;

/** The default servers as a list, in start order. */
export const defaultServers: readonly Server[] = Object.values(defaults);

/** 3-broker KRaft cluster (RF 3, min ISR 2); not part of the default set (`infra/up kafka-cluster`). */
export const cluster: KafkaCluster = kafkaCluster({ name: 'kafka-cluster', basePort: ports.kafkaClusterBase });

/**
 * Dedicated servers for fault-injection tests (kill -9), so the shared defaults are never
 * killed. Not started by `infra/up`; stopped by `infra/down`.
 */
export const faultServers = {
  kafka: kafkaBroker({
    name: 'kafka-fault',
    port: envInt('CDC_KAFKA_FAULT_PORT', 19492),
    controllerPort: envInt('CDC_KAFKA_FAULT_CONTROLLER_PORT', 19493),
  }),
  pg: postgresServer({ name: 'pg-fault', port: envInt('CDC_PG_FAULT_PORT', 55499) }),
} as const satisfies Record<string, Server>;

/** Connection strings of the default set, for tests and examples. */
export const endpoints = {
  /** Kafka bootstrap, '127.0.0.1:19092'. */
  kafka: defaults.kafka.url,
  /** 'postgres://postgres@127.0.0.1:55432/postgres' (trust auth, no password). */
  pgSource: defaults.pgSource.url,
  pgReplica: defaults.pgReplica.url,
  /** 'mysql://root@127.0.0.1:33306' (root, no password). */
  mariaSource: defaults.mariaSource.url,
  mariaReplica: defaults.mariaReplica.url,
  redis: defaults.redis.url,
  /** Confluent-compatible schema registry base URL, 'http://127.0.0.1:18081/apis/ccompat/v7'. */
  registry: defaults.registry.url,
  /** Bootstrap list of the 3-broker cluster. */
  kafkaCluster: cluster.bootstrap,
} as const;

/** Start all default servers concurrently; rejects naming every server that failed. */
export async function startDefaults(): Promise<void> {
  const results = await Promise.allSettled(defaultServers.map((s) => s.start()));
  const errors = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
  if (errors.length > 0) throw new Error(errors.join('\n\n'));
}

/**
 * Servers by CLI name: the default set, the cluster's brokers (`kafka-cluster-1`..3),
 * the group name `kafka-cluster` (all three brokers), and the fault-test servers.
 */
export function serversByName(): Map<string, readonly Server[]> {
  const map = new Map<string, readonly Server[]>();
  for (const s of defaultServers) map.set(s.name, [s]);
  for (const b of cluster.brokers) map.set(b.name, [b]);
  map.set(cluster.name, cluster.brokers);
  for (const s of Object.values(faultServers)) map.set(s.name, [s]);
  return map;
}
