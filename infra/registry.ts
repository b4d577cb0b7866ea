// Apicurio Registry 3.0.9: a real schema registry with a Confluent-compatible REST API under
// /apis/ccompat/v7, run from the distribution Apicurio publishes to Maven Central
// (io.apicurio:apicurio-registry-app:<v>:tar.gz:all, a Quarkus runner jar + lib/).
// 3.0.9 is the newest 3.x that runs on Java 17 (3.3.x needs Java 21, not packaged by Debian 12).
import * as fs from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { bin, cacheRoot, envStr } from './env.js';
import { managedServer, type Server } from './managed.js';
import { runCommand, withLock } from './proc.js';

export const APICURIO_VERSION = '3.0.9';

export interface RegistryOptions {
  name: string;
  port: number;
  /**
   * `file`: H2 database in the data dir, so schema ids that records in Kafka refer to survive a
   * restart (the default set). `memory`: H2 in memory, gone at stop (throw-away test servers).
   * @defaultValue file
   */
  storage?: 'file' | 'memory';
  /** JVM -Xmx. @defaultValue `${CDC_REGISTRY_HEAP:-384m}` */
  heap?: string;
  startTimeoutMs?: number;
}

let distPromise: Promise<string> | undefined;

/**
 * Directory of the unpacked distribution, `${CDC_CACHE_DIR:-.cache}/apicurio-registry-3.0.9`,
 * holding `apicurio-registry-app-3.0.9-runner.jar` and `lib/`. Runs Maven only when the cache
 * is incomplete (no marker file from a finished unpack).
 */
export function ensureRegistryDist(): Promise<string> {
  distPromise ??= resolveDist().catch((e: unknown) => {
    distPromise = undefined;
    throw e;
  });
  return distPromise;
}

const runnerJar = (dir: string): string => join(dir, `apicurio-registry-app-${APICURIO_VERSION}-runner.jar`);

async function resolveDist(): Promise<string> {
  const dir = join(cacheRoot(), `apicurio-registry-${APICURIO_VERSION}`);
  const marker = join(dir, '.complete');
  if (fs.existsSync(marker)) return dir;
  fs.mkdirSync(cacheRoot(), { recursive: true });
  return withLock(`${dir}.lock`, async () => {
    if (fs.existsSync(marker)) return dir;
    const logFile = `${dir}.maven.log`;
    // dependency:get with transitive=false: the app POM's parent (io.apicurio:apicurio-registry)
    // is not on Central, so resolving its dependency tree (copy-dependencies) fails; the tarball
    // itself is self-contained.
    const artifact = `io.apicurio:apicurio-registry-app:${APICURIO_VERSION}:tar.gz:all`;
    await runCommand(bin.mvn, ['-q', '-B', 'dependency:get', `-Dartifact=${artifact}`, '-Dtransitive=false'], {
      cwd: cacheRoot(),
      logFile,
      timeoutMs: 900_000,
    });
    const repo = envStr('CDC_MAVEN_REPO', join(homedir(), '.m2', 'repository'));
    const tarball = join(repo, 'io', 'apicurio', 'apicurio-registry-app', APICURIO_VERSION, `apicurio-registry-app-${APICURIO_VERSION}-all.tar.gz`);
    if (!fs.existsSync(tarball)) throw new Error(`Maven did not leave ${tarball} (see ${logFile}); set CDC_MAVEN_REPO if your local repository is elsewhere`);
    const tmp = `${dir}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp, { recursive: true });
    await runCommand('tar', ['-xzf', tarball, '-C', tmp], { logFile, timeoutMs: 300_000 });
    if (!fs.existsSync(runnerJar(tmp))) throw new Error(`${tarball} has no ${runnerJar('')}`);
    fs.writeFileSync(join(tmp, '.complete'), `${new Date().toISOString()}\n`);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
    return dir;
  });
}

/** Ready = Quarkus readiness UP and the Confluent-compatible API answering. */
async function registryProbe(port: number): Promise<boolean> {
  try {
    const ready = await fetch(`http://127.0.0.1:${port}/health/ready`, { signal: AbortSignal.timeout(3000) });
    if (!ready.ok) return false;
    const subjects = await fetch(`http://127.0.0.1:${port}/apis/ccompat/v7/subjects`, { signal: AbortSignal.timeout(3000) });
    return subjects.ok;
  } catch {
    return false;
  }
}

/** Apicurio Registry on 127.0.0.1:<port>; `url` is the Confluent-compatible base URL. */
export function registryServer(opts: RegistryOptions): Server {
  const storage = opts.storage ?? 'file';
  return managedServer({
    name: opts.name,
    kind: 'registry',
    port: opts.port,
    url: `http://127.0.0.1:${opts.port}/apis/ccompat/v7`,
    startTimeoutMs: opts.startTimeoutMs ?? 180_000,
    stopTimeoutMs: 30_000,
    async init(ctx) {
      fs.mkdirSync(ctx.dataDir, { recursive: true });
      await ensureRegistryDist();
    },
    async command(ctx) {
      const dist = await ensureRegistryDist();
      const db = storage === 'file' ? `jdbc:h2:file:${join(ctx.dataDir, 'registry')}` : `jdbc:h2:mem:${opts.name}`;
      return {
        cmd: bin.java,
        args: [
          `-Xmx${opts.heap ?? envStr('CDC_REGISTRY_HEAP', '384m')}`,
          // A small, mostly idle service on a 2-core machine: C1 only and the serial collector
          // start it faster and leave the cores to Kafka and the databases.
          '-XX:TieredStopAtLevel=1',
          '-XX:+UseSerialGC',
          '-XX:+ExitOnOutOfMemoryError',
          '-Djava.awt.headless=true',
          `-Djava.io.tmpdir=${ctx.runDir}`,
          `-Dquarkus.http.host=127.0.0.1`,
          `-Dquarkus.http.port=${opts.port}`,
          `-Dapicurio.datasource.url=${db}`,
          `-Dapicurio.storage.snapshot.location=${ctx.runDir}`,
          // Request lines of every schema lookup would drown the log.
          '-Dquarkus.http.access-log.enabled=false',
          // GET /subjects lists at most this many (default 1000); every test run adds subjects.
          '-Dapicurio.ccompat.max-subjects=1000000',
          '-jar',
          runnerJar(dist),
        ],
      };
    },
    probe: () => registryProbe(opts.port),
  });
}
