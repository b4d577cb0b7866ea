// MariaDB 10.11 from the Debian binaries, in our own data dir (binlog on, ROW, GTIDs).
import * as fs from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { bin, runRoot } from './env.js';
import { managedServer, type Server, type ServerContext } from './managed.js';
import { checkSocketPath, isRoot, withTimeout } from './proc.js';

export interface MariadbOptions {
  name: string;
  port: number;
  serverId: number;
  /** gtid_domain_id, default = serverId (distinct domains for source and replica). */
  gtidDomainId?: number;
  /** Extra / overriding mariadbd options, e.g. { 'sync-binlog': 0 } → --sync-binlog=0. */
  options?: Record<string, string | number>;
  /** Extra environment of the server process (e.g. LD_PRELOAD + FAKETIME for a skewed clock). */
  env?: Record<string, string>;
  startTimeoutMs?: number;
}

async function mariadbProbe(port: number): Promise<boolean> {
  let conn: mysql.Connection | undefined;
  try {
    conn = await withTimeout(
      mysql.createConnection({ host: '127.0.0.1', port, user: 'root', connectTimeout: 1500 }),
      3000,
      'mariadb connect',
    );
    await conn.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await conn?.end().catch(() => undefined);
  }
}

export function mariadbServer(opts: MariadbOptions): Server {
  const runDir = join(runRoot(), opts.name);
  const socket = join(runDir, 'mysqld.sock');
  const tmpdir = join(runDir, 'tmp');
  const userArg = isRoot() ? ['--user=mysql'] : [];
  const ensureTmpdir = (ctx: ServerContext): void => {
    fs.mkdirSync(tmpdir, { recursive: true, mode: 0o700 });
    if (ctx.owner) fs.chownSync(tmpdir, ctx.owner.uid, ctx.owner.gid);
  };
  return managedServer({
    name: opts.name,
    kind: 'mariadb',
    port: opts.port,
    url: `mysql://root@127.0.0.1:${opts.port}`,
    owner: 'mysql',
    startTimeoutMs: opts.startTimeoutMs ?? 120_000,
    async init(ctx) {
      // A private tmpdir: with the shared /tmp, two concurrent bootstraps once failed with
      // "Unknown table 'mysql.tmp_user_sys'" after their temporary table file vanished.
      ensureTmpdir(ctx);
      await ctx.run(bin.mariadbInstallDb, [
        '--no-defaults',
        ...userArg,
        `--datadir=${ctx.dataDir}`,
        `--tmpdir=${tmpdir}`,
        '--auth-root-authentication-method=normal',
        '--skip-test-db',
      ]);
    },
    command(ctx) {
      checkSocketPath(socket);
      ensureTmpdir(ctx);
      const options: Record<string, string | number> = {
        datadir: ctx.dataDir,
        tmpdir,
        port: opts.port,
        'bind-address': '127.0.0.1',
        socket,
        'pid-file': join(runDir, 'mariadbd.pid'),
        'log-error': ctx.logFile,
        'plugin-dir': '/usr/lib/mysql/plugin',
        'lc-messages-dir': '/usr/share/mysql',
        'server-id': opts.serverId,
        'gtid-domain-id': opts.gtidDomainId ?? opts.serverId,
        'log-bin': join(ctx.dataDir, 'binlog'),
        'relay-log': join(ctx.dataDir, 'relay-bin'),
        'binlog-format': 'ROW',
        'binlog-row-image': 'FULL',
        // Column names, signedness, charsets, enum values and the key in every TABLE_MAP event.
        'binlog-row-metadata': 'FULL',
        'binlog-checksum': 'CRC32',
        'log-slave-updates': 'ON',
        'sync-binlog': 1,
        'innodb-flush-log-at-trx-commit': 1,
        'innodb-buffer-pool-size': '256M',
        'max-connections': 300,
        'character-set-server': 'utf8mb4',
        'collation-server': 'utf8mb4_general_ci',
        'expire-logs-days': 7,
        ...opts.options,
      };
      const args = [
        '--no-defaults', // must come first
        ...userArg,
        ...Object.entries(options).map(([k, v]) => `--${k}=${v}`),
        '--skip-name-resolve',
      ];
      return { cmd: bin.mariadbd, args, ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}) };
    },
    async firstStart() {
      // Over the unix socket as root@localhost (exists with an empty password after
      // --auth-root-authentication-method=normal). Anonymous users shadow named users
      // connecting from localhost; root@<hostname> entries only produce warnings under
      // --skip-name-resolve. root must work over TCP from 127.0.0.1 and localhost.
      const conn = await mysql.createConnection({ socketPath: socket, user: 'root', multipleStatements: true });
      try {
        await conn.query(`
          DELETE FROM mysql.global_priv WHERE User = '';
          DELETE FROM mysql.global_priv WHERE Host NOT IN ('localhost', '127.0.0.1', '::1', '%');
          DELETE FROM mysql.proxies_priv WHERE Host NOT IN ('localhost', '127.0.0.1', '::1', '%');
          FLUSH PRIVILEGES;
          CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
          CREATE USER IF NOT EXISTS 'root'@'localhost';
          ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '';
          ALTER USER 'root'@'localhost' IDENTIFIED BY '';
          GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
          GRANT ALL PRIVILEGES ON *.* TO 'root'@'localhost' WITH GRANT OPTION;
          FLUSH PRIVILEGES;`);
      } finally {
        await conn.end();
      }
    },
    probe: () => mariadbProbe(opts.port),
  });
}
