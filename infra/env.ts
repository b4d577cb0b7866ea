// Locations and environment overrides shared by all server kinds.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (the parent of infra/). */
export const repoRoot: string = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Root of per-server run dirs: `${CDC_RUN_DIR:-<repo>/.run}`. */
export function runRoot(): string {
  return resolve(process.env['CDC_RUN_DIR'] || join(repoRoot, '.run'));
}

/** Download cache (Kafka jars): `${CDC_CACHE_DIR:-<repo>/.cache}`. */
export function cacheRoot(): string {
  return resolve(process.env['CDC_CACHE_DIR'] || join(repoRoot, '.cache'));
}

/** Integer from an environment variable, or the fallback when unset/empty. */
export function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name}=${raw} is not a positive integer`);
  return n;
}

export function envStr(name: string, fallback: string): string {
  const raw = process.env[name];
  return raw === undefined || raw === '' ? fallback : raw;
}

/** Binaries (Debian 12 locations), each overridable. */
export const bin = {
  get pg(): string {
    return envStr('CDC_PG_BIN', '/usr/lib/postgresql/15/bin');
  },
  get mariadbd(): string {
    return envStr('CDC_MARIADBD', '/usr/sbin/mariadbd');
  },
  get mariadbInstallDb(): string {
    return envStr('CDC_MARIADB_INSTALL_DB', '/usr/bin/mariadb-install-db');
  },
  get redisServer(): string {
    return envStr('CDC_REDIS_SERVER', '/usr/bin/redis-server');
  },
  get java(): string {
    const home = process.env['JAVA_HOME'];
    return envStr('CDC_JAVA', home ? join(home, 'bin', 'java') : 'java');
  },
  get mvn(): string {
    return envStr('CDC_MVN', 'mvn');
  },
};
