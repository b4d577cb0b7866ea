import { envInt } from '../../infra/env.js';
import { type Link, type RegionSpec, regionalKafkaProperties, tcpLink } from '../../infra/netsim.js';
import { kafkaBroker, mariadbServer, postgresServer, type Server } from '../../infra/servers.js';

/**
 * Dedicated servers of the multi-master tests: one database server per region (own name and
 * port, so the shared defaults are never touched), one of them with a skewed clock (libfaketime
 * preloaded into the server process), and a Kafka broker with one listener per region whose
 * advertised address is that region's link proxy (infra/netsim.ts): every byte a region's
 * pipeline exchanges with Kafka crosses the region's simulated link.
 */

export const FAKETIME_LIB = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

// Below the ephemeral range (32768+), where an outgoing connection can hold a port a server wants.
// Kafka base, controller +1, region listeners +3..+5, region proxies +6..+8, databases +11..+13.
const base = envInt('CDC_MESH_BASE_PORT', 19670);

export interface Region {
  name: string;
  kind: 'postgres' | 'mysql';
  server: Server;
  /** Kafka bootstrap through this region's link. */
  kafka: string;
  spec: RegionSpec;
  link?: Link;
}

/** Clock offset of the skewed region, libfaketime syntax. @defaultValue +3s (CDC_MESH_SKEW) */
export const SKEW = process.env.CDC_MESH_SKEW ?? '+3s';
/** Region whose server runs with the skewed clock. @defaultValue pg-us (CDC_MESH_SKEW_NODE) */
export const SKEWED = process.env.CDC_MESH_SKEW_NODE ?? 'pg-us';

const skewEnv = (name: string): Record<string, string> | undefined =>
  name === SKEWED ? { LD_PRELOAD: FAKETIME_LIB, FAKETIME: SKEW, DONT_FAKE_MONOTONIC: '1', FAKETIME_NO_CACHE: '1' } : undefined;

function region(name: string, kind: 'postgres' | 'mysql', i: number, server: Server): Region {
  const spec: RegionSpec = { name: name.replace(/-/g, '_'), listenerPort: base + 3 + i, proxyPort: base + 6 + i };
  return { name, kind, server, kafka: `127.0.0.1:${spec.proxyPort}`, spec };
}

function build() {
  const pgEu = postgresServer({ name: 'mesh-pg-eu', port: base + 11, ...(skewEnv('pg-eu') ? { env: skewEnv('pg-eu')! } : {}) });
  const pgUs = postgresServer({ name: 'mesh-pg-us', port: base + 12, ...(skewEnv('pg-us') ? { env: skewEnv('pg-us')! } : {}) });
  const mariaAp = mariadbServer({ name: 'mesh-maria-ap', port: base + 13, serverId: 71, ...(skewEnv('maria-ap') ? { env: skewEnv('maria-ap')! } : {}) });
  const regions = [region('pg-eu', 'postgres', 0, pgEu), region('pg-us', 'postgres', 1, pgUs), region('maria-ap', 'mysql', 2, mariaAp)];
  const kafka = kafkaBroker({
    name: 'mesh-kafka',
    port: base,
    controllerPort: base + 1,
    heap: '384m',
    properties: regionalKafkaProperties({ port: base, controllerPort: base + 1, regions: regions.map((r) => r.spec) }),
  });
  return { regions, kafka };
}

export const mesh = build();

/** Starts the dedicated servers and the region links (idempotent for the servers). */
export async function startMeshServers(): Promise<void> {
  await Promise.all([mesh.kafka.start(), ...mesh.regions.map((r) => r.server.start())]);
  for (const r of mesh.regions) {
    r.link ??= await tcpLink({ name: `${r.name}<->kafka`, listenPort: r.spec.proxyPort, targetPort: r.spec.listenerPort });
  }
}

/** Closes the links and stops the servers (data dirs stay for a faster next start). */
export async function stopMeshServers(): Promise<void> {
  for (const r of mesh.regions) {
    await r.link?.close();
    delete r.link;
  }
  await Promise.allSettled([mesh.kafka.stop(), ...mesh.regions.map((r) => r.server.stop())]);
}
