/**
 * Snapshot speed: a 1M-row pgbench_accounts table (scale 10) copied from the source PostgreSQL to
 * the replica PostgreSQL by
 *   native-subscription  PostgreSQL's own initial table copy (CREATE SUBSCRIPTION ... copy_data)
 *   pg_dump|psql         pg_dump -t pgbench_accounts piped into psql
 *   cdc-direct-key       our snapshot, bulk path, key-range chunks (bullmq jobs, in-process worker)
 *   cdc-direct-ctid      our snapshot, bulk path, CTID page-range chunks
 *   cdc-kafka            our snapshot as op r events into Kafka (Debezium's path), for scale
 * on the same machine, in the same run. Each timing covers the whole job as a user sees it (for
 * ours: slot creation with its exported snapshot, planning, all chunks, completion).
 *
 *   npx tsx bench/snapshot.ts [--scale 10] [--runs 3] [--no-kafka] [--kafka-only]
 *
 * Results: bench/results/snapshot.json and snapshot.md (ratios against the native copy).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { parseConfig } from '../config/load.js';
import { createKafka } from '../pipeline/kafka.js';
import { runSnapshot } from '../pipeline/snapshot/engine.js';
import { createSlotWithSnapshot } from '../pipeline/snapshot/pg-export.js';
import { sleep } from '../util/retry.js';
import { arg } from './args.js';

const run = promisify(execFile);
const scale = Number(arg('scale', '10'));
const runs = Number(arg('runs', '3'));
const withKafka = !process.argv.includes('--no-kafka');

const SRC = { host: '127.0.0.1', port: Number(process.env.CDC_PG_SOURCE_PORT ?? 55432) };
const REP = { host: '127.0.0.1', port: Number(process.env.CDC_PG_REPLICA_PORT ?? 55433) };
const url = (s: typeof SRC, db: string) => `postgres://postgres@${s.host}:${s.port}/${db}`;
const tag = Math.random().toString(16).slice(2, 8);
const srcDb = `bench_snap_${tag}`;

async function q(u: string, text: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: u });
  await c.connect();
  try {
    return await c.query(text, params);
  } finally {
    await c.end();
  }
}

async function sh(cmd: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const p = spawn('bash', ['-o', 'pipefail', '-c', cmd], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd}: exit ${code}: ${err.slice(-500)}`))));
  });
}

async function freshReplicaDb(name: string, withSchema: boolean): Promise<string> {
  await q(url(REP, 'postgres'), `drop database if exists ${name} with (force)`);
  await q(url(REP, 'postgres'), `create database ${name}`);
  if (withSchema) await sh(`pg_dump -s -t pgbench_accounts -h ${SRC.host} -p ${SRC.port} -U postgres ${srcDb} | psql -q -h ${REP.host} -p ${REP.port} -U postgres ${name}`);
  return name;
}

async function countRows(db: string): Promise<number> {
  return Number((await q(url(REP, db), 'select count(*)::int8 as n from pgbench_accounts')).rows[0].n);
}

async function nativeSubscription(i: number): Promise<number> {
  const db = await freshReplicaDb(`bench_native_${tag}_${i}`, true);
  const name = `bench_sub_${tag}_${i}`;
  await q(url(SRC, srcDb), `create publication ${name} for table pgbench_accounts`);
  try {
    const t0 = performance.now();
    await q(url(REP, db), `create subscription ${name} connection 'host=${SRC.host} port=${SRC.port} dbname=${srcDb} user=postgres' publication ${name} with (copy_data = true)`);
    for (;;) {
      const r = await q(url(REP, db), `select count(*) filter (where srsubstate not in ('s', 'r'))::int as pending, count(*)::int as n from pg_subscription_rel`);
      if (r.rows[0].n > 0 && r.rows[0].pending === 0) break;
      await sleep(20);
    }
    const ms = performance.now() - t0;
    if ((await countRows(db)) !== scale * 100_000) throw new Error('native copy: wrong row count');
    return ms;
  } finally {
    await q(url(REP, db), `drop subscription if exists ${name}`).catch(() => undefined);
    await q(url(SRC, srcDb), `drop publication if exists ${name}`).catch(() => undefined);
    await q(url(REP, 'postgres'), `drop database if exists ${db} with (force)`).catch(() => undefined);
  }
}

async function pgDumpPsql(i: number): Promise<number> {
  const db = await freshReplicaDb(`bench_dump_${tag}_${i}`, false);
  try {
    const t0 = performance.now();
    await sh(`pg_dump -t pgbench_accounts -h ${SRC.host} -p ${SRC.port} -U postgres ${srcDb} | psql -q -h ${REP.host} -p ${REP.port} -U postgres ${db}`);
    const ms = performance.now() - t0;
    if ((await countRows(db)) !== scale * 100_000) throw new Error('pg_dump: wrong row count');
    return ms;
  } finally {
    await q(url(REP, 'postgres'), `drop database if exists ${db} with (force)`).catch(() => undefined);
  }
}

async function ours(i: number, mode: 'key' | 'ctid' | 'kafka', chunkRows: number, concurrency: number): Promise<number> {
  const db = await freshReplicaDb(`bench_cdc_${tag}_${i}`, false);
  const slot = `bench_slot_${tag}_${i}_${mode}`;
  const name = `bench-${tag}-${i}-${mode}`;
  const cfg = parseConfig(`name: ${name}
kafka: { brokers: ["127.0.0.1:${process.env.CDC_KAFKA_PORT ?? 19092}"], partitions: 3 }
redis: { url: "${process.env.CDC_REDIS_URL ?? 'redis://127.0.0.1:6379'}" }
sources: [{ name: pg, url: "${url(SRC, srcDb)}", tables: { include: ["public.pgbench_accounts"] } }]
sinks: [{ name: replica, url: "${url(REP, db)}" }]
snapshot: { target: ${mode === 'kafka' ? 'kafka' : 'direct'}, chunkRows: ${chunkRows}, concurrency: ${concurrency} }
log: { level: warn }
`);
  const kafka = createKafka(cfg.kafka);
  try {
    const t0 = performance.now();
    const exp = await createSlotWithSnapshot(url(SRC, srcDb), slot);
    const r = await runSnapshot(cfg, { source: 'pg', snapshotName: exp.snapshotName, position: { kind: 'pg', lsn: exp.consistentPoint }, ctid: mode === 'ctid', kafka: () => kafka, pollMs: 20 });
    const ms = performance.now() - t0;
    await exp.release();
    if (r.rows !== scale * 100_000) throw new Error(`ours (${mode}): ${r.rows} rows`);
    if (mode !== 'kafka' && (await countRows(db)) !== scale * 100_000) throw new Error(`ours (${mode}): wrong row count in the replica`);
    return ms;
  } finally {
    await q(url(SRC, srcDb), `select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1`, [slot]).catch(() => undefined);
    await q(url(REP, 'postgres'), `drop database if exists ${db} with (force)`).catch(() => undefined);
    if (mode === 'kafka') {
      const admin = kafka.admin();
      await admin.connect();
      const topics = (await admin.listTopics()).filter((t) => t.startsWith(`${name}.`));
      if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => undefined);
      await admin.disconnect();
    }
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const rows = scale * 100_000;
  process.stderr.write(`preparing ${rows} rows (pgbench -i -s ${scale}) in ${srcDb}\n`);
  await q(url(SRC, 'postgres'), `create database ${srcDb}`);
  try {
    await run('pgbench', ['-i', '-q', '-s', String(scale), '-h', SRC.host, '-p', String(SRC.port), '-U', 'postgres', srcDb]);
    await q(url(SRC, srcDb), 'vacuum analyze pgbench_accounts');
    const only = process.argv.includes('--kafka-only');
    const methods: { name: string; fn: (i: number) => Promise<number> }[] = only ? [] : [
      { name: 'native-subscription', fn: nativeSubscription },
      { name: 'pg_dump|psql', fn: pgDumpPsql },
      { name: 'cdc-direct-key', fn: (i) => ours(i, 'key', 125_000, 2) },
      { name: 'cdc-direct-ctid', fn: (i) => ours(i, 'ctid', 125_000, 2) },
    ];
    const times = new Map<string, number[]>(methods.map((m) => [m.name, []]));
    const load0 = loadavg()[0] ?? 0;
    // Interleaved rounds, so drift in machine load hits every method alike.
    for (let i = 0; i < runs; i++) {
      for (const m of methods) {
        const ms = await m.fn(i);
        times.get(m.name)!.push(ms);
        process.stderr.write(`round ${i + 1}/${runs} ${m.name}: ${(ms / 1000).toFixed(2)} s\n`);
      }
    }
    if (withKafka) {
      const ms = await ours(99, 'kafka', 100_000, 2);
      times.set('cdc-kafka', [ms]);
      process.stderr.write(`cdc-kafka: ${(ms / 1000).toFixed(2)} s\n`);
    }
    if (only) {
      process.stdout.write(`cdc-kafka: ${rows} rows in ${(times.get('cdc-kafka')![0]! / 1000).toFixed(2)} s\n`);
      await q(url(SRC, 'postgres'), `drop database if exists ${srcDb} with (force)`).catch(() => undefined);
      process.exit(0);
    }
    const native = median(times.get('native-subscription')!);
    const results = [...times].map(([name, ms]) => ({
      method: name,
      runsMs: ms.map((x) => Math.round(x)),
      medianMs: Math.round(median(ms)),
      rowsPerSec: Math.round(rows / (median(ms) / 1000)),
      vsNativeCopy: Number((native / median(ms)).toFixed(2)),
    }));
    const meta = {
      date: new Date().toISOString(),
      rows,
      table: 'pgbench_accounts (pgbench -i -s ' + scale + ')',
      machine: { cores: cpus().length, model: cpus()[0]?.model ?? '', loadavg1Start: load0, loadavg1End: loadavg()[0] ?? 0 },
      note: 'Same machine, same run, interleaved rounds; source and replica are two PostgreSQL 15 clusters on this host. vsNativeCopy = native median / method median (>1 = faster than PostgreSQL\'s own initial copy). The machine is shared with other engineers running tests: numbers are noisy, compare within one run.',
    };
    await mkdir(join('bench', 'results'), { recursive: true });
    await writeFile(join('bench', 'results', 'snapshot.json'), `${JSON.stringify({ ...meta, results }, null, 2)}\n`);
    const md = [
      `# Snapshot speed: ${rows.toLocaleString('en')} rows (${meta.table})`,
      '',
      `${meta.date}, ${meta.machine.cores} cores (${meta.machine.model}), load average ${load0.toFixed(2)} at start, ${meta.machine.loadavg1End.toFixed(2)} at end. ${meta.note}`,
      '',
      '| method | median s | rows/s | vs native copy | runs (s) |',
      '|---|---|---|---|---|',
      ...results.map((r) => `| ${r.method} | ${(r.medianMs / 1000).toFixed(2)} | ${r.rowsPerSec.toLocaleString('en')} | ${r.vsNativeCopy}x | ${r.runsMs.map((x) => (x / 1000).toFixed(2)).join(', ')} |`),
      '',
      'cdc-direct-*: slot + exported snapshot, chunk planning, 8 chunk jobs of 125k rows on bullmq, 2 at a time, each a COPY out of the snapshot piped into COPY in on the replica (one transaction with its chunk marker). cdc-kafka: the same chunks as op r JSON events into Kafka (3 partitions), one run.',
      '',
    ].join('\n');
    await writeFile(join('bench', 'results', 'snapshot.md'), md);
    process.stdout.write(md);
  } finally {
    await q(url(SRC, 'postgres'), `drop database if exists ${srcDb} with (force)`).catch(() => undefined);
  }
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
