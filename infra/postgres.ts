// PostgreSQL 15 from the Debian binaries, in our own data dir, run as user postgres.
import * as fs from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { bin, runRoot } from './env.js';
import { managedServer, type Server } from './managed.js';
import { checkSocketPath, withTimeout, writeFileAtomic } from './proc.js';

export interface PostgresOptions {
  name: string;
  port: number;
  /** Extra / overriding postgresql.conf settings (values are written verbatim). */
  settings?: Record<string, string | number>;
  /** Extra environment of the server process (e.g. LD_PRELOAD + FAKETIME for a skewed clock). */
  env?: Record<string, string>;
  startTimeoutMs?: number;
}

/** Quote a postgresql.conf value unless it is a plain number. */
const confValue = (v: string | number): string =>
  typeof v === 'number' || /^-?\d+$/.test(v) ? String(v) : `'${v.replace(/'/g, "''")}'`;

async function pgProbe(port: number): Promise<boolean> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user: 'postgres',
    database: 'postgres',
    connectionTimeoutMillis: 1500,
    query_timeout: 3000,
  });
  client.on('error', () => undefined);
  try {
    await withTimeout(client.connect(), 3000, 'pg connect');
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export function postgresServer(opts: PostgresOptions): Server {
  const runDir = join(runRoot(), opts.name);
  return managedServer({
    name: opts.name,
    kind: 'postgres',
    port: opts.port,
    url: `postgres://postgres@127.0.0.1:${opts.port}/postgres`,
    owner: 'postgres',
    runAsOwner: true,
    stopSignal: 'SIGINT', // "fast" shutdown: SIGTERM ("smart") would wait for replication clients to leave
    startTimeoutMs: opts.startTimeoutMs ?? 120_000,
    async init(ctx) {
      await ctx.run(
        join(bin.pg, 'initdb'),
        ['-D', ctx.dataDir, '--auth=trust', '-U', 'postgres', '--encoding=UTF8', '--locale=C.UTF-8'],
        { asOwner: true },
      );
      fs.appendFileSync(join(ctx.dataDir, 'postgresql.conf'), "\n# settings of infra/postgres.ts\ninclude 'cdc.conf'\n");
    },
    command(ctx) {
      checkSocketPath(join(runDir, `.s.PGSQL.${opts.port}`));
      const settings: Record<string, string | number> = {
        listen_addresses: '127.0.0.1',
        port: opts.port,
        unix_socket_directories: runDir,
        max_connections: 300,
        shared_buffers: '256MB',
        wal_level: 'logical',
        max_replication_slots: 64,
        max_wal_senders: 64,
        max_slot_wal_keep_size: -1,
        wal_sender_timeout: '60s',
        fsync: 'on',
        synchronous_commit: 'on',
        full_page_writes: 'on',
        logging_collector: 'off', // stderr is the log file
        log_destination: 'stderr',
        log_line_prefix: '%m [%p] %q%u@%d ',
        log_timezone: 'UTC',
        timezone: 'UTC',
        ...opts.settings,
      };
      const body = Object.entries(settings)
        .map(([k, v]) => `${k} = ${confValue(v)}`)
        .join('\n');
      writeFileAtomic(join(ctx.dataDir, 'cdc.conf'), `# written by infra/postgres.ts on every start\n${body}\n`);
      return { cmd: join(bin.pg, 'postgres'), args: ['-D', ctx.dataDir], ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}) };
    },
    probe: () => pgProbe(opts.port),
  });
}
