// Apache Kafka 3.9.1 in KRaft combined mode (broker + controller in one JVM),
// run from jars resolved by Maven (infra/kafka/pom.xml) into the cache dir.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { bin, cacheRoot, envStr, repoRoot, runRoot } from './env.js';
import { managedServer, type Server, type ServerContext } from './managed.js';
import { createOnce, runCommand, waitFor, withLock, withTimeout, writeFileAtomic } from './proc.js';

export const KAFKA_VERSION = '3.9.1';

type Props = Record<string, string | number | boolean>;

// ------------------------------------------------------------------- jars

let libsPromise: Promise<string> | undefined;

/**
 * Directory holding the Kafka server jars, `${CDC_CACHE_DIR:-.cache}/kafka-3.9.1/libs`.
 * Runs Maven only when the cache is incomplete (no marker file from a finished copy).
 */
export function ensureKafkaLibs(): Promise<string> {
  libsPromise ??= resolveLibs().catch((e: unknown) => {
    libsPromise = undefined;
    throw e;
  });
  return libsPromise;
}

async function resolveLibs(): Promise<string> {
  const base = join(cacheRoot(), `kafka-${KAFKA_VERSION}`);
  const libs = join(base, 'libs');
  const marker = join(libs, '.complete');
  if (fs.existsSync(marker)) return libs;
  fs.mkdirSync(base, { recursive: true });
  return withLock(join(base, '.lock'), async () => {
    if (fs.existsSync(marker)) return libs;
    for (const old of fs.readdirSync(base).filter((f) => f.startsWith('libs.tmp-'))) {
      fs.rmSync(join(base, old), { recursive: true, force: true }); // left by an interrupted run
    }
    const tmp = join(base, `libs.tmp-${process.pid}`);
    const pomDir = join(repoRoot, 'infra', 'kafka');
    await runCommand(
      bin.mvn,
      ['-q', '-B', '-f', join(pomDir, 'pom.xml'), 'dependency:copy-dependencies', `-DoutputDirectory=${tmp}`, '-DincludeScope=runtime'],
      { cwd: pomDir, logFile: join(base, 'maven.log'), timeoutMs: 600_000 },
    );
    const jars = fs.readdirSync(tmp).filter((f) => f.endsWith('.jar'));
    if (!jars.includes(`kafka_2.13-${KAFKA_VERSION}.jar`)) {
      throw new Error(`Maven did not produce kafka_2.13-${KAFKA_VERSION}.jar in ${tmp}`);
    }
    fs.writeFileSync(join(tmp, '.complete'), `${jars.sort().join('\n')}\n`);
    fs.rmSync(libs, { recursive: true, force: true });
    fs.renameSync(tmp, libs);
    return libs;
  });
}

// ------------------------------------------------------------------- broker

export interface KafkaBrokerOptions {
  name: string;
  /** Client (PLAINTEXT) port. */
  port: number;
  /** KRaft controller port. */
  controllerPort: number;
  /** node.id, default 1. */
  nodeId?: number;
  /** controller.quorum.voters, default this node alone: `<nodeId>@127.0.0.1:<controllerPort>`. */
  voters?: string;
  /** File with the cluster id shared by all nodes of a cluster; default `<runDir>/cluster.id`. */
  clusterIdFile?: string;
  /** Replication factor for internal and auto-created topics (default 1). */
  replicationFactor?: number;
  /** min.insync.replicas (default 1). */
  minInsyncReplicas?: number;
  /** JVM -Xmx, default `${CDC_KAFKA_HEAP:-512m}`. */
  heap?: string;
  /** Extra / overriding server.properties entries. */
  properties?: Props;
  startTimeoutMs?: number;
}

/** Kafka's cluster ids are 16 random bytes, base64url without padding, not starting with '-'. */
function randomClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

function renderProps(props: Props): string {
  return `${Object.entries(props)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join('\n')}\n`;
}

const LOG4J = `# written by infra/kafka.ts; stdout goes to the broker's log file
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.clients=WARN
`;

/** Health: a kafkajs admin `describeCluster` through this broker lists the broker itself. */
async function kafkaProbe(host: string, port: number): Promise<boolean> {
  const ports = await kafkaBrokerPorts(host, port);
  return ports !== undefined && ports.includes(port);
}

/** Ports of the live brokers as seen through one broker (undefined if it does not answer). */
async function kafkaBrokerPorts(host: string, port: number): Promise<number[] | undefined> {
  const kafka = new Kafka({
    clientId: 'cdc-infra-health',
    brokers: [`${host}:${port}`],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    requestTimeout: 3000,
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  try {
    await withTimeout(admin.connect(), 4000, 'kafka connect');
    const cluster = await withTimeout(admin.describeCluster(), 4000, 'kafka describeCluster');
    return cluster.brokers.map((b) => b.port);
  } catch {
    return undefined;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** One KRaft node running as broker and controller. */
export function kafkaBroker(opts: KafkaBrokerOptions): Server {
  const host = '127.0.0.1';
  const nodeId = opts.nodeId ?? 1;
  const rf = opts.replicationFactor ?? 1;
  const minIsr = opts.minInsyncReplicas ?? 1;
  const runDir = join(runRoot(), opts.name);
  const clusterIdFile = opts.clusterIdFile ?? join(runDir, 'cluster.id');
  const propsFile = join(runDir, 'server.properties');
  const log4jFile = join(runDir, 'log4j.properties');

  const writeConfig = (ctx: ServerContext): void => {
    const props: Props = {
      'process.roles': 'broker,controller',
      'node.id': nodeId,
      'controller.quorum.voters': opts.voters ?? `${nodeId}@${host}:${opts.controllerPort}`,
      listeners: `PLAINTEXT://${host}:${opts.port},CONTROLLER://${host}:${opts.controllerPort}`,
      'advertised.listeners': `PLAINTEXT://${host}:${opts.port}`,
      'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
      'controller.listener.names': 'CONTROLLER',
      'inter.broker.listener.name': 'PLAINTEXT',
      'log.dirs': ctx.dataDir,
      'num.partitions': 1,
      'default.replication.factor': rf,
      'min.insync.replicas': minIsr,
      'offsets.topic.replication.factor': rf,
      'transaction.state.log.replication.factor': rf,
      'transaction.state.log.min.isr': minIsr,
      'group.initial.rebalance.delay.ms': 0,
      // After a kill -9 the restarted node is refused (DUPLICATE_BROKER_REGISTRATION) until
      // its previous registration's session expires: 9 s by default, plus retry back-off
      // (~16 s restarts). 1 s heartbeats / 4 s session: ~9 s restarts, still tolerant of
      // multi-second stalls (a fenced single broker means an outage).
      'broker.heartbeat.interval.ms': 1000,
      'broker.session.timeout.ms': 4000,
      ...opts.properties,
    };
    writeFileAtomic(propsFile, `# written by infra/kafka.ts on every start\n${renderProps(props)}`);
    writeFileAtomic(log4jFile, LOG4J);
  };

  const java = async (mainClass: string, args: string[]): Promise<{ cmd: string; args: string[] }> => {
    const libs = await ensureKafkaLibs();
    return {
      cmd: bin.java,
      args: [
        `-Xmx${opts.heap ?? envStr('CDC_KAFKA_HEAP', '512m')}`,
        '-XX:+UseG1GC',
        '-XX:MaxGCPauseMillis=20',
        '-XX:+ExitOnOutOfMemoryError',
        '-Djava.awt.headless=true',
        `-Dlog4j.configuration=file:${log4jFile}`,
        '-cp',
        `${libs}/*`,
        mainClass,
        ...args,
      ],
    };
  };

  return managedServer({
    name: opts.name,
    kind: 'kafka',
    port: opts.port,
    url: `${host}:${opts.port}`,
    extraPorts: [opts.controllerPort],
    stopTimeoutMs: 60_000,
    startTimeoutMs: opts.startTimeoutMs ?? 180_000,
    async init(ctx) {
      fs.mkdirSync(ctx.dataDir, { recursive: true });
      writeConfig(ctx);
      const clusterId = createOnce(clusterIdFile, randomClusterId);
      const fmt = await java('kafka.tools.StorageTool', ['format', '-t', clusterId, '-c', propsFile]);
      await ctx.run(fmt.cmd, fmt.args);
    },
    async command(ctx) {
      writeConfig(ctx);
      return java('kafka.Kafka', [propsFile]);
    },
    probe: () => kafkaProbe(host, opts.port),
  });
}

// ------------------------------------------------------------------- cluster

export interface KafkaClusterOptions {
  name: string;
  /** Broker i (1-based) listens on basePort + 100*(i-1), its controller on that + 1. */
  basePort: number;
  size?: number;
  heap?: string;
}

export interface KafkaCluster {
  readonly name: string;
  readonly brokers: Server[];
  /** Comma-separated bootstrap list. */
  readonly bootstrap: string;
  /**
   * Starts all nodes concurrently (a quorum needs a majority) and waits until each is
   * healthy and every node's metadata lists all nodes.
   */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Every node is healthy and sees all nodes. */
  healthy(): Promise<boolean>;
  destroy(): Promise<void>;
}

/** A KRaft cluster of `size` (default 3) combined broker+controller nodes, RF 3 / min ISR 2. */
export function kafkaCluster(opts: KafkaClusterOptions): KafkaCluster {
  const size = opts.size ?? 3;
  const nodes = Array.from({ length: size }, (_, i) => ({
    nodeId: i + 1,
    port: opts.basePort + 100 * i,
    controllerPort: opts.basePort + 100 * i + 1,
  }));
  const voters = nodes.map((n) => `${n.nodeId}@127.0.0.1:${n.controllerPort}`).join(',');
  const clusterDir = join(runRoot(), opts.name);
  const clusterIdFile = join(clusterDir, 'cluster.id');
  const rf = Math.min(3, size);
  const brokers = nodes.map((n) =>
    kafkaBroker({
      name: `${opts.name}-${n.nodeId}`,
      port: n.port,
      controllerPort: n.controllerPort,
      nodeId: n.nodeId,
      voters,
      clusterIdFile,
      replicationFactor: rf,
      minInsyncReplicas: Math.max(1, rf - 1),
      ...(opts.heap ? { heap: opts.heap } : {}),
    }),
  );
  const allPorts = nodes.map((n) => n.port).sort();
  const complete = async (): Promise<boolean> => {
    if (!(await Promise.all(brokers.map((b) => b.healthy()))).every(Boolean)) return false;
    const views = await Promise.all(nodes.map((n) => kafkaBrokerPorts('127.0.0.1', n.port)));
    return views.every((v) => v !== undefined && [...v].sort().join() === allPorts.join());
  };
  return {
    name: opts.name,
    brokers,
    bootstrap: brokers.map((b) => b.url).join(','),
    async start() {
      fs.mkdirSync(clusterDir, { recursive: true });
      const results = await Promise.allSettled(brokers.map((b) => b.start()));
      const failed = results.flatMap((r) => (r.status === 'rejected' ? [String((r.reason as Error).message)] : []));
      if (failed.length > 0) throw new Error(`${opts.name}: ${failed.join('\n')}`);
      // A node is healthy once it is unfenced; the others learn that a moment later.
      if (!(await waitFor(complete, 60_000, 250))) {
        throw new Error(`${opts.name}: the nodes do not all see each other after 60 s`);
      }
    },
    async stop() {
      await Promise.all(brokers.map((b) => b.stop()));
    },
    healthy: complete,
    async destroy() {
      await Promise.all(brokers.map((b) => b.destroy()));
      fs.rmSync(clusterDir, { recursive: true, force: true });
    },
  };
}
