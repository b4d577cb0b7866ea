// The main job, `npm run demo` (after scripts/demo.sh brought the servers up):
//   1. fresh sample databases on the PostgreSQL and MariaDB sources, with seed rows;
//   2. `cdc run` as a child process: both sources -> Kafka -> a PostgreSQL and a MariaDB replica
//      (so PG -> MariaDB and MariaDB -> PG too), starting with an initial snapshot;
//   3. a mixed write workload on both sources (transfers, inserts, updates, deletes, a key change);
//   4. waits until the replicas caught up, then `cdc verify` for every source/replica pair;
//   5. prints what happened. Exit code 0 only if every replica equals its source.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { stringify } from 'yaml';
import { parseConfig } from '../config/load.js';
import { defaultServers, endpoints, repoRoot, runRoot } from '../infra/servers.js';
import { formatVerifyReport, runVerify, type VerifyReport } from '../pipeline/jobs/verify.js';
import { createLogger, setLogger } from '../util/log.js';

const SEED_ACCOUNTS = Number(process.env.DEMO_ACCOUNTS ?? 20_000);
const SEED_CUSTOMERS = Number(process.env.DEMO_CUSTOMERS ?? 20_000);
const WORKLOAD_S = Number(process.env.DEMO_SECONDS ?? 20);
const METRICS_PORT = Number(process.env.DEMO_METRICS_PORT ?? 19464);
const PG_DB = 'demo';
const MY_DB = 'shop';

const out = (s = '') => process.stdout.write(`${s}\n`);
const dbUrl = (base: string, db: string) => {
  const u = new URL(base);
  u.pathname = `/${db}`;
  return u.toString();
};

async function pgAdmin(url: string, sql: string[]): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    for (const s of sql) await c.query(s);
  } finally {
    await c.end();
  }
}

/** Drops what an earlier demo run left: slots (they would retain WAL), databases, replica tables. */
async function reset(): Promise<void> {
  const c = new pg.Client({ connectionString: endpoints.pgSource });
  await c.connect();
  try {
    const slots = await c.query<{ slot_name: string; active_pid: number | null }>(`select slot_name, active_pid from pg_replication_slots where slot_name like 'cdc\\_demo%'`);
    for (const s of slots.rows) {
      if (s.active_pid !== null) await c.query('select pg_terminate_backend($1)', [s.active_pid]);
      await c.query('select pg_drop_replication_slot($1)', [s.slot_name]).catch(() => undefined);
    }
    await c.query(`drop database if exists ${PG_DB} with (force)`);
    await c.query(`create database ${PG_DB}`);
  } finally {
    await c.end();
  }
  await pgAdmin(endpoints.pgReplica, [`drop database if exists ${PG_DB} with (force)`, `create database ${PG_DB}`]);
  for (const url of [endpoints.mariaSource, endpoints.mariaReplica]) {
    const m = await mysql.createConnection(url);
    await m.query(`drop database if exists ${MY_DB}`);
    await m.query(`drop database if exists ${PG_DB}`);
    await m.query('drop database if exists cdc_demo_meta');
    await m.end();
  }
  // The replica URL's database must exist (it receives the PostgreSQL source's tables).
  const r = await mysql.createConnection(endpoints.mariaReplica);
  await r.query(`create database ${PG_DB}`);
  await r.end();
}

async function seed(): Promise<void> {
  await pgAdmin(dbUrl(endpoints.pgSource, PG_DB), [
    `create table accounts (id bigint primary key, owner text not null, balance numeric(14,2) not null, opened timestamptz not null default now(), tags text[])`,
    `create table transfers (id bigserial primary key, from_id bigint not null, to_id bigint not null, amount numeric(14,2) not null, at timestamptz(6) not null default clock_timestamp())`,
    `insert into accounts select g, 'owner ' || g, 1000, now() - (g || ' minutes')::interval, array['t' || (g % 5)] from generate_series(1, ${SEED_ACCOUNTS}) g`,
  ]);
  const m = await mysql.createConnection(`${endpoints.mariaSource}`);
  await m.query(`create database ${MY_DB}`);
  await m.query(`use ${MY_DB}`);
  await m.query(`create table customers (id int unsigned primary key, name varchar(80) not null, email varchar(120), credit decimal(12,2) not null, updated datetime(6) not null, status enum('new','active','closed') not null)`);
  await m.query(`create table orders (id bigint unsigned auto_increment primary key, customer_id int unsigned not null, total decimal(12,2) not null, note text, created timestamp(6) not null default current_timestamp(6))`);
  for (let i = 1; i <= SEED_CUSTOMERS; i += 5000) {
    const rows = [];
    for (let j = i; j < Math.min(i + 5000, SEED_CUSTOMERS + 1); j++) rows.push([j, `customer ${j} 😀`, `c${j}@example.com`, '100.00', '2026-01-01 00:00:00.000001', 'new']);
    await m.query('insert into customers values ?', [rows]);
  }
  await m.end();
}

function pipelineYaml(name: string): string {
  const cfg = {
    name,
    kafka: { brokers: [endpoints.kafka], topicPrefix: name, partitions: 3 },
    redis: { url: endpoints.redis },
    metrics: { port: METRICS_PORT },
    log: { level: 'warn' },
    snapshot: { mode: 'initial', target: 'kafka' },
    sources: [
      { name: 'pg', url: dbUrl(endpoints.pgSource, PG_DB), postgres: { slot: `cdc_demo_${name.replace(/\W/g, '_')}`, publication: 'cdc_demo', heartbeatIntervalMs: 5000 } },
      { name: 'maria', url: dbUrl(endpoints.mariaSource, MY_DB), tables: { include: [`${MY_DB}.*`] }, mysql: { serverId: 5401, startFrom: 'snapshot' } },
    ],
    sinks: [
      { name: 'pg-replica', url: dbUrl(endpoints.pgReplica, PG_DB), sources: ['pg', 'maria'], mode: 'key', metaSchema: 'cdc_demo_meta', topicRefreshIntervalMs: 1000 },
      { name: 'maria-replica', url: dbUrl(endpoints.mariaReplica, PG_DB), sources: ['pg', 'maria'], mode: 'transaction', metaSchema: 'cdc_demo_meta', topicRefreshIntervalMs: 1000 },
    ],
  };
  return stringify(cfg);
}

interface WorkloadStats {
  pgTransactions: number;
  pgRowChanges: number;
  myTransactions: number;
  myRowChanges: number;
}

async function workload(seconds: number, stats: WorkloadStats): Promise<void> {
  const p = new pg.Client({ connectionString: dbUrl(endpoints.pgSource, PG_DB) });
  await p.connect();
  const m = await mysql.createConnection(dbUrl(endpoints.mariaSource, MY_DB));
  const end = Date.now() + seconds * 1000;
  const rnd = (n: number) => 1 + Math.floor(Math.random() * n);
  let nextAccount = SEED_ACCOUNTS + 1;
  let round = 0;
  const pgLoop = async () => {
    while (Date.now() < end) {
      round++;
      const a = rnd(SEED_ACCOUNTS);
      const b = rnd(SEED_ACCOUNTS);
      const amt = (Math.random() * 50).toFixed(2);
      // A transfer: two balance updates and a log row, one transaction.
      await p.query('begin');
      await p.query('update accounts set balance = balance - $1 where id = $2', [amt, a]);
      await p.query('update accounts set balance = balance + $1 where id = $2', [amt, b]);
      await p.query('insert into transfers (from_id, to_id, amount) values ($1, $2, $3)', [a, b, amt]);
      await p.query('commit');
      stats.pgTransactions++;
      stats.pgRowChanges += 3;
      if (round % 10 === 0) {
        await p.query(`insert into accounts (id, owner, balance, tags) values ($1, 'new owner', 0, '{}')`, [nextAccount++]);
        await p.query('delete from accounts where id = $1', [rnd(SEED_ACCOUNTS)]);
        stats.pgTransactions += 2;
        stats.pgRowChanges += 2;
      }
      if (round % 250 === 0) {
        // A primary-key change: replicas see a delete and an insert.
        const r = await p.query('update accounts set id = id + 10000000 where id = $1', [rnd(SEED_ACCOUNTS)]);
        stats.pgTransactions++;
        stats.pgRowChanges += r.rowCount ?? 0;
      }
    }
  };
  const myLoop = async () => {
    while (Date.now() < end) {
      const c = rnd(SEED_CUSTOMERS);
      await m.beginTransaction();
      await m.query('insert into orders (customer_id, total, note) values (?, ?, ?)', [c, (Math.random() * 300).toFixed(2), 'order ✓']);
      await m.query(`update customers set credit = credit - 1.25, updated = now(6), status = 'active' where id = ?`, [c]);
      await m.commit();
      stats.myTransactions++;
      stats.myRowChanges += 2;
      if (stats.myTransactions % 20 === 0) {
        const [r] = await m.query('delete from orders where customer_id = ? limit 1', [rnd(SEED_CUSTOMERS)]);
        stats.myTransactions++;
        stats.myRowChanges += (r as { affectedRows: number }).affectedRows;
      }
    }
  };
  try {
    await Promise.all([pgLoop(), myLoop()]);
  } finally {
    await p.end();
    await m.end();
  }
}

/** p50/p99 upper bounds from a Prometheus histogram's cumulative buckets. */
function histogramQuantiles(metrics: string, name: string): { count: number; p50: string; p99: string } | null {
  const buckets: [number, number][] = [];
  for (const line of metrics.split('\n')) {
    const m = new RegExp(`^${name}_bucket\\{[^}]*le="([^"]+)"[^}]*\\} (\\d+)`).exec(line);
    if (m) buckets.push([m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2])]);
  }
  // Several label sets (one per source): add them up per bound.
  const byLe = new Map<number, number>();
  for (const [le, n] of buckets) byLe.set(le, (byLe.get(le) ?? 0) + n);
  const sorted = [...byLe].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total === 0) return null;
  const q = (f: number) => {
    const hit = sorted.find(([, n]) => n >= f * total);
    return hit === undefined || hit[0] === Infinity ? '> 30 s' : `<= ${hit[0] * 1000} ms`;
  };
  return { count: total, p50: q(0.5), p99: q(0.99) };
}

async function scrapeMetrics(): Promise<string> {
  try {
    const r = await fetch(`http://127.0.0.1:${METRICS_PORT}/metrics`);
    return await r.text();
  } catch {
    return '';
  }
}

async function countRows(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const pgCount = async (url: string, label: string, tables: string[]) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      for (const t of tables) counts[`${label} ${t}`] = Number((await c.query(`select count(*)::int n from ${t}`).catch(() => ({ rows: [{ n: -1 }] }))).rows[0].n);
    } finally {
      await c.end();
    }
  };
  const myCount = async (url: string, label: string, tables: string[]) => {
    const m = await mysql.createConnection(url);
    try {
      for (const t of tables) {
        const [rows] = await m.query(`select count(*) n from ${t}`).catch(() => [[{ n: -1 }]]);
        counts[`${label} ${t}`] = Number((rows as { n: number }[])[0]!.n);
      }
    } finally {
      await m.end();
    }
  };
  await pgCount(dbUrl(endpoints.pgSource, PG_DB), 'pg-source   ', ['public.accounts', 'public.transfers']);
  await myCount(endpoints.mariaSource, 'maria-source', [`${MY_DB}.customers`, `${MY_DB}.orders`]);
  await pgCount(dbUrl(endpoints.pgReplica, PG_DB), 'pg-replica  ', ['public.accounts', 'public.transfers', `${MY_DB}.customers`, `${MY_DB}.orders`]);
  await myCount(endpoints.mariaReplica, 'maria-replica', [`${PG_DB}.accounts`, `${PG_DB}.transfers`, `${MY_DB}.customers`, `${MY_DB}.orders`]);
  return counts;
}

async function main(): Promise<number> {
  setLogger(createLogger(process.env.CDC_LOG_LEVEL ?? 'warn'));
  const t0 = Date.now();
  out('== servers');
  for (const s of defaultServers) out(`  ${(await s.healthy()) ? 'ok  ' : 'DOWN'} ${s.name.padEnd(14)} ${s.url}`);

  const name = `demo-${new Date().toISOString().replace(/[-:.TZ]/g, '').slice(0, 14)}`;
  const dir = join(runRoot(), 'demo');
  mkdirSync(dir, { recursive: true });
  const cfgFile = join(dir, 'pipeline.yaml');
  writeFileSync(cfgFile, pipelineYaml(name));
  const cfg = parseConfig(pipelineYaml(name));

  out(`== sample data (pipeline ${name})`);
  await reset();
  await seed();
  out(`  PostgreSQL ${PG_DB}: ${SEED_ACCOUNTS} accounts; MariaDB ${MY_DB}: ${SEED_CUSTOMERS} customers`);

  out('== cdc run (initial snapshot, then streaming)');
  const logFile = join(dir, 'pipeline.log');
  const child: ChildProcess = spawn(process.execPath, [join(repoRoot, 'bin', 'cdc.js'), 'run', '-c', cfgFile], {
    cwd: repoRoot,
    stdio: ['ignore', openSync(logFile, 'w'), openSync(logFile, 'a')],
  });
  let exited: number | null = null;
  child.on('exit', (code) => (exited = code ?? -1));
  try {
    const stats: WorkloadStats = { pgTransactions: 0, pgRowChanges: 0, myTransactions: 0, myRowChanges: 0 };
    await sleep(3000);
    if (exited !== null) throw new Error(`cdc run exited with code ${exited}; see ${logFile}`);
    out(`== workload: ${WORKLOAD_S} s of writes on both sources (while the snapshot runs)`);
    const tw = Date.now();
    await workload(WORKLOAD_S, stats);
    const workloadMs = Date.now() - tw;
    out(`  PostgreSQL: ${stats.pgTransactions} transactions, ${stats.pgRowChanges} row changes`);
    out(`  MariaDB:    ${stats.myTransactions} transactions, ${stats.myRowChanges} row changes`);
    out(`  ${Math.round(((stats.pgRowChanges + stats.myRowChanges) * 1000) / workloadMs)} row changes/s in all`);

    out('== waiting for the replicas to catch up');
    const tc = Date.now();
    const reports: VerifyReport[] = [];
    const pairs = [
      ['pg', 'pg-replica'],
      ['pg', 'maria-replica'],
      ['maria', 'maria-replica'],
      ['maria', 'pg-replica'],
    ] as const;
    for (;;) {
      if (exited !== null) throw new Error(`cdc run exited with code ${exited}; see ${logFile}`);
      reports.length = 0;
      for (const [source, sink] of pairs) reports.push(await runVerify(cfg, { source, sink }));
      if (reports.every((r) => r.equal) || Date.now() - tc > 180_000) break;
      await sleep(2000);
    }
    out(`  caught up and verified ${((Date.now() - tc) / 1000).toFixed(1)} s after the workload stopped`);

    out('== row counts');
    for (const [k, v] of Object.entries(await countRows())) out(`  ${k.padEnd(34)} ${v}`);

    const metrics = await scrapeMetrics();
    const lat = histogramQuantiles(metrics, 'cdc_commit_to_kafka_seconds');
    const published = [...metrics.matchAll(/^cdc_events_published_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
    out('== Kafka');
    out(`  ${published} change events published (snapshot + stream); topics ${name}.*`);
    // Changes written while the initial snapshot ran wait for it: this is not steady-state latency
    // (bench/postgres-source.ts and bench/mysql-source.ts measure that).
    if (lat) out(`  commit -> Kafka ack over ${lat.count} streamed events, most written during the snapshot: p50 ${lat.p50}, p99 ${lat.p99}`);

    out('== cdc verify (chunked checksums, row by row where chunks differ)');
    for (const r of reports) out(formatVerifyReport(r).trimEnd().replace(/^/gm, '  '));
    const ok = reports.every((r) => r.equal);
    out(`== ${ok ? 'OK: every replica equals its source' : 'DIFFERENCES FOUND'} (${((Date.now() - t0) / 1000).toFixed(1)} s in all; pipeline log ${logFile})`);
    return ok ? 0 : 1;
  } finally {
    child.kill('SIGTERM');
    await Promise.race([new Promise((r) => child.once('exit', r)), sleep(10_000)]);
    if (exited === null) child.kill('SIGKILL');
  }
}

process.exitCode = await main().catch((err: Error) => {
  process.stderr.write(`demo failed: ${err.message}\n`);
  return 1;
});
process.exit();
