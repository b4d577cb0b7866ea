/**
 * Sink apply throughput, draining a backlog, side by side with PostgreSQL's own logical
 * replication draining the same backlog in the same run.
 *
 *   npx tsx bench/sink.ts [--changes 100000] [--tx-size 10] [--runs key:1,key:2,transaction:1]
 *
 * 1. A bench database on the PostgreSQL source with a pgbench-like table. A native publication
 *    and a subscription (in its own database on the replica cluster) are created, the
 *    subscription disabled: its slot keeps the backlog. The real PostgreSQL source connector
 *    captures the same changes into Kafka.
 * 2. The workload: inserts, then random updates, then random deletes, in transactions of
 *    `--tx-size` row changes.
 * 3. Native: ENABLE the subscription, time until a marker row written after the workload arrives
 *    (apply is in commit order, so everything before it is applied).
 * 4. Ours: for each run (`mode:workers`), a sink into its own replica database drains the Kafka
 *    backlog with that many `cdc run --only <sink>` worker processes (key mode splits the
 *    partitions between them; transaction mode has one active worker); timed until every
 *    partition's stored offset reaches the end of the topic.
 * Every replica is then compared with the source (row count and checksum).
 *
 * Results: bench/results/sink-<time>.json and bench/results/sink.md (latest run). The machine is
 * shared: the load average at start is recorded; re-run when it is quiet.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { type PipelineConfig, pipelineConfig } from '../config/schema.js';
import { createSource } from '../connectors/index.js';
import { runSource } from '../pipeline/source-runner.js';
import { sourceTopics } from '../pipeline/topics.js';
import { jsonCodec } from '../schemas/codec/json.js';
import { createKafka } from '../pipeline/kafka.js';
import { repoRoot } from '../infra/servers.js';
import { createLogger } from '../util/log.js';

const args = process.argv.slice(2);
const arg = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};
const CHANGES = Number(arg('changes', '100000'));
const TX = Number(arg('tx-size', '10'));
const RUNS = arg('runs', 'key:1,key:2,transaction:1')
  .split(',')
  .map((r) => {
    const [mode, workers] = r.split(':');
    return { mode: mode as 'key' | 'transaction', workers: Number(workers ?? 1) };
  });
const runName = (r: { mode: string; workers: number }) => `bench-${r.mode}-${r.workers}`;
const SRC = process.env.CDC_PG_SOURCE_URL ?? 'postgres://postgres@127.0.0.1:55432/postgres';
const REP = process.env.CDC_PG_REPLICA_URL ?? 'postgres://postgres@127.0.0.1:55433/postgres';
const KAFKA = process.env.CDC_KAFKA_BROKERS ?? '127.0.0.1:19092';
const log = createLogger(process.env.CDC_LOG_LEVEL ?? 'warn');

const tag = Math.random().toString(16).slice(2, 8);
const srcDb = `bench_src_${tag}`;
const urlOf = (base: string, db: string) => base.replace(/\/[^/]*$/, `/${db}`);
const sec = (ms: number) => Math.round(ms) / 1000;

async function q(url: string, sql: string, params: unknown[] = []) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows as Record<string, unknown>[];
  } finally {
    await c.end();
  }
}

const TABLE = `create table accounts (aid int primary key, bid int not null, abalance int not null, filler char(84))`;

async function workload(url: string): Promise<number> {
  const inserts = Math.round(CHANGES * 0.25);
  const updates = Math.round(CHANGES * 0.65);
  const deletes = CHANGES - inserts - updates;
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`create table bench_count (n bigint)`);
    await c.query(`insert into bench_count values (0)`);
    // Procedures may COMMIT: one source transaction per `tx` row changes.
    await c.query(`create procedure bench_work(ins int, upd int, del int, tx int) language plpgsql as $$
      declare cnt bigint := 0; k int; i int;
      begin
        for i in 1..ins loop
          insert into accounts values (i, i % 100, 0, 'x'); cnt := cnt + 1;
          if i % tx = 0 then commit; end if;
        end loop;
        commit;
        for i in 1..upd loop
          update accounts set abalance = abalance + i where aid = 1 + floor(random() * ins)::int;
          get diagnostics k = row_count; cnt := cnt + k;
          if i % tx = 0 then commit; end if;
        end loop;
        commit;
        for i in 1..del loop
          delete from accounts where aid = 1 + floor(random() * ins)::int;
          get diagnostics k = row_count; cnt := cnt + k;
          if i % tx = 0 then commit; end if;
        end loop;
        update bench_count set n = n + cnt;
        commit;
      end $$`);
    await c.query(`call bench_work($1, $2, $3, $4)`, [inserts, updates, deletes, TX]);
    return Number((await c.query(`select n from bench_count`)).rows[0].n);
  } finally {
    await c.end();
  }
}

async function checksum(url: string, schema = 'public'): Promise<string> {
  const [r] = await q(url, `select count(*) as n, coalesce(sum(aid::bigint * 7 + bid * 3 + abalance), 0) as s from "${schema}".accounts`);
  return `${r!.n}:${r!.s}`;
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error('timed out');
}

/** Drops what a run created (also after a failure): subscription first (it drops its slot), then slots, databases, topics. */
async function cleanup(prefix: string, dbs: string[]): Promise<void> {
  for (const db of dbs) {
    const url = urlOf(REP, db);
    const subs = await q(url, `select subname from pg_subscription where subdbid = (select oid from pg_database where datname = current_database())`).catch(() => []);
    for (const s of subs) {
      await q(url, `alter subscription ${String(s.subname)} disable`).catch(() => undefined);
      await q(url, `drop subscription ${String(s.subname)}`).catch(() => undefined);
    }
  }
  for (const r of await q(SRC, `select slot_name from pg_replication_slots where slot_name like $1`, [`%${tag}`]).catch(() => [])) {
    await q(SRC, `select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = $1 and active_pid is not null`, [r.slot_name]).catch(() => undefined);
    await new Promise((res) => setTimeout(res, 200));
    await q(SRC, `select pg_drop_replication_slot($1)`, [r.slot_name]).catch(() => undefined);
  }
  await q(SRC, `drop database if exists ${srcDb} with (force)`).catch(() => undefined);
  for (const db of dbs) await q(REP, `drop database if exists ${db} with (force)`).catch(() => undefined);
  const kafka = createKafka({ brokers: [KAFKA], clientId: 'bench-cleanup' });
  const a = kafka.admin();
  await a.connect();
  const topics = (await a.listTopics()).filter((t) => t.startsWith(`${prefix}.`));
  if (topics.length > 0) await a.deleteTopics({ topics }).catch(() => undefined);
  await a.disconnect();
}

async function main(): Promise<void> {
  const prefix = `bench_${tag}`;
  const dbs: Record<string, string> = { native: `bench_native_${tag}` };
  for (const r of RUNS) dbs[runName(r)] = `bench_${r.mode}${r.workers}_${tag}`;
  try {
    await run(prefix, dbs);
  } finally {
    await cleanup(prefix, Object.values(dbs));
  }
}

async function run(prefix: string, dbs: Record<string, string>): Promise<void> {
  const load0 = loadavg()[0]!;
  const results: Record<string, unknown> = {
    at: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg1mAtStart: load0 },
    workload: { requestedChanges: CHANGES, txSize: TX, mix: '25% inserts, 65% random updates, 10% random deletes (pgbench-like accounts table)' },
  };
  await q(SRC, `create database ${srcDb}`);
  const src = urlOf(SRC, srcDb);
  await q(src, TABLE);
  await q(src, `create table bench_marker (id int primary key)`);
  await q(src, `create publication bench_native for table accounts, bench_marker`);
  for (const db of Object.values(dbs)) await q(REP, `create database ${db}`);
  const native = urlOf(REP, dbs.native!);
  await q(native, TABLE);
  await q(native, `create table bench_marker (id int primary key)`);
  const srcConn = `host=127.0.0.1 port=${new URL(SRC).port} dbname=${srcDb} user=postgres`;
  await q(native, `create subscription bench_sub_${tag} connection '${srcConn}' publication bench_native with (copy_data = false)`);
  await q(native, `alter subscription bench_sub_${tag} disable`);

  // Our source connector captures the same workload into Kafka.
  const cfg: PipelineConfig = pipelineConfig.parse({
    name: prefix,
    kafka: { brokers: [KAFKA], topicPrefix: prefix, partitions: 3 },
    sources: [{ name: 'src', url: src, tables: { include: ['public.accounts'] }, postgres: { slot: `bench_cdc_${tag}`, publication: `bench_cdc_${tag}`, heartbeatIntervalMs: 0 } }],
    sinks: RUNS.map((r) => ({ name: runName(r), url: urlOf(REP, dbs[runName(r)]!), mode: r.mode })),
    log: { level: 'warn' },
  });
  const kafka = createKafka(cfg.kafka);
  const srcAc = new AbortController();
  const connector = await createSource(cfg.sources[0]!, cfg);
  const sourceDone = runSource({ cfg, source: cfg.sources[0]!, connector, kafka, codec: jsonCodec(), log: log.child({ source: 'src' }), signal: srcAc.signal });
  sourceDone.catch((err) => log.error({ err: (err as Error).message }, 'source failed'));
  await waitUntil(async () => (await q(src, `select count(*)::int as n from pg_replication_slots where slot_name = $1 and active`, [`bench_cdc_${tag}`]))[0]!.n === 1, 60_000, 200);

  const t0 = Date.now();
  const changes = await workload(src);
  await q(src, `insert into bench_marker values (1)`);
  results.workload = { ...(results.workload as object), rowChanges: changes, generateSeconds: sec(Date.now() - t0) };
  const expected = await checksum(src);
  console.log(`workload: ${changes} row changes in ${sec(Date.now() - t0)} s; source ${expected}`);

  // Wait until the connector has published everything (topic ends stop moving).
  const topic = sourceTopics(prefix, 'src').table({ db: srcDb, schema: 'public', table: 'accounts' });
  const admin = kafka.admin();
  await admin.connect();
  const topicEnd = async () => (await admin.fetchTopicOffsets(topic)).map((o) => ({ partition: o.partition, high: o.high }));
  let last = '';
  const tPub = Date.now();
  await waitUntil(
    async () => {
      const now = JSON.stringify(await topicEnd().catch(() => []));
      const stable = now === last && now !== '[]';
      last = now;
      return stable;
    },
    600_000,
    3000,
  );
  srcAc.abort();
  await sourceDone.catch(() => undefined);
  const ends = await topicEnd();
  const records = ends.reduce((n, e) => n + Number(e.high), 0);
  console.log(`kafka backlog: ${records} records (changes + delete tombstones) in ${topic}, published in ~${sec(Date.now() - tPub)} s`);
  results.kafka = { topic, records, partitions: ends.length };

  // 1. Native logical replication drains its backlog.
  const tn = Date.now();
  await q(native, `alter subscription bench_sub_${tag} enable`);
  await waitUntil(async () => (await q(native, `select count(*)::int as n from bench_marker`))[0]!.n === 1, 900_000, 20);
  const nativeMs = Date.now() - tn;
  const nativeSum = await checksum(native);
  console.log(`native subscription: ${sec(nativeMs)} s, ${Math.round(changes / (nativeMs / 1000))} rows/s, ${nativeSum === expected ? 'equal' : `DIFFERENT ${nativeSum}`}`);
  const runs: Record<string, unknown>[] = [{ name: 'postgresql-native-subscription', seconds: sec(nativeMs), rowsPerSecond: Math.round(changes / (nativeMs / 1000)), equal: nativeSum === expected }];
  await q(native, `alter subscription bench_sub_${tag} disable`);

  // 2. Our sink, per run, from the same Kafka backlog, as worker processes (`cdc run --only`).
  const dir0 = mkdtempSync(join(tmpdir(), 'cdc-bench-'));
  const cfgFile = join(dir0, 'pipeline.json');
  writeFileSync(cfgFile, JSON.stringify({ ...cfg, log: { level: 'warn' } }));
  for (const r of RUNS) {
    const sinkCfg = cfg.sinks.find((s) => s.name === runName(r))!;
    const url = sinkCfg.url;
    const logFd = openSync(join(dir0, `${sinkCfg.name}.log`), 'a');
    const ts = Date.now();
    const workers = Array.from({ length: r.workers }, () =>
      spawn(process.execPath, [join(repoRoot, 'bin', 'cdc.js'), 'run', '-c', cfgFile, '--only', sinkCfg.name], { stdio: ['ignore', 'ignore', logFd], env: process.env }),
    );
    let firstRow = 0;
    try {
      await waitUntil(
        async () => {
          try {
            if (!firstRow) {
              const [row] = await q(url, `select exists (select 1 from public.accounts) as e`);
              if (row!.e) firstRow = Date.now();
            }
            const rows = await q(url, `select "partition" as p, next_offset::text as o from cdc_meta.offsets where topic = $1`, [topic]);
            const stored = new Map(rows.map((x) => [Number(x.p), String(x.o)]));
            return ends.every((e) => stored.get(e.partition) === e.high);
          } catch {
            return false;
          }
        },
        900_000,
        50,
      );
    } finally {
      for (const w of workers) w.kill('SIGTERM');
    }
    const doneAt = Date.now();
    const sum = await checksum(url, 'public');
    const total = doneAt - ts;
    const apply = doneAt - (firstRow || ts);
    console.log(`sink ${r.mode} mode, ${r.workers} worker(s): ${sec(apply)} s from first row (${sec(total)} s with start-up), ${Math.round(changes / (apply / 1000))} rows/s, ${sum === expected ? 'equal' : `DIFFERENT ${sum}`}`);
    runs.push({
      name: `cdc-sink-${r.mode}-mode-${r.workers}-worker${r.workers > 1 ? 's' : ''}`,
      seconds: sec(apply),
      secondsWithStartup: sec(total),
      rowsPerSecond: Math.round(changes / (apply / 1000)),
      rowsPerSecondWithStartup: Math.round(changes / (total / 1000)),
      equal: sum === expected,
      settings: { workers: r.workers, batchSize: sinkCfg.batchSize, concurrency: sinkCfg.concurrency, conflict: sinkCfg.conflict.strategy },
    });
    await new Promise((res) => setTimeout(res, 1000));
  }
  results.runs = runs;
  results.machine = { ...(results.machine as object), loadavg1mAtEnd: loadavg()[0] };
  await admin.disconnect();

  const dir = join(repoRoot, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  writeFileSync(join(dir, `sink-${stamp}.json`), `${JSON.stringify(results, null, 2)}\n`);
  const md = [
    `# Sink apply throughput vs PostgreSQL logical replication (${results.at as string})`,
    '',
    `Backlog: ${changes} row changes (${(results.workload as { mix: string }).mix}), source transactions of ${TX} changes; ${records} Kafka records in ${ends.length} partitions.`,
    `Machine: ${cpus().length} cores (${cpus()[0]?.model}), load average ${load0.toFixed(2)} at start, ${loadavg()[0]!.toFixed(2)} at end: shared with other work, so numbers are noisy; re-run when quiet.`,
    '',
    '| drain | seconds | rows/s | replica equal to source |',
    '|---|---|---|---|',
    ...runs.map((r) => `| ${r.name as string} | ${r.seconds as number}${r.secondsWithStartup ? ` (${r.secondsWithStartup as number} with start-up)` : ''} | ${r.rowsPerSecond as number} | ${r.equal ? 'yes' : 'NO'} |`),
    '',
    'Native: from ALTER SUBSCRIPTION ENABLE to the marker row (written after the workload) on the subscriber. Sink: `cdc run --only <sink>` worker processes, from the first replicated row to every partition offset stored at the end of the topic (start-up = process start, Kafka group join, table creation). Conflict strategy lww (the default), batchSize 1000, concurrency 3.',
    '',
  ].join('\n');
  writeFileSync(join(dir, 'sink.md'), md);
  console.log(md);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
