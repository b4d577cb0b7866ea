/**
 * Sink apply throughput, draining a backlog, side by side with PostgreSQL's own logical
 * replication draining the same backlog in the same run.
 *
 *   npx tsx bench/sink.ts [--workload pgbench|uniform] [--changes 100000] [--partitions 3] [--runs key:1,transaction:1] [--sink-options JSON]
 *
 * Workloads:
 * - pgbench: `pgbench -i -s 1` tables, then standard TPC-B-like transactions (`pgbench -n`): per
 *   transaction one account, one teller and the one branch updated, one history row inserted
 *   (4 row changes). Few hot rows, as in most OLTP: what per-key dedup is for.
 * - uniform: a pgbench-like accounts table; inserts, then updates and deletes of uniformly random
 *   rows, in transactions of `--tx-size` changes. Almost nothing to dedup: the worst case.
 *
 * Steps: the same initial rows on the source and every replica database (pgbench); a native
 * publication and a subscription (its own database on the replica cluster), disabled so its slot
 * keeps the backlog; the real PostgreSQL source connector capturing the same changes into Kafka;
 * the workload; then, timed:
 * - native: ALTER SUBSCRIPTION ENABLE until a marker row written after the workload arrives (apply
 *   is in commit order);
 * - the ceiling of any kafkajs-based sink: a consumer process (bench/kafka-read.ts) that only reads
 *   the backlog with the sink's fetch settings, then one that also JSON-parses every value;
 * - ours: for each run (`mode:workers`), `cdc run --only <sink>` worker processes drain the Kafka
 *   backlog into their own database, until every partition's stored offset is at the topic end.
 * Every replica is compared with the source (per table: row count and a checksum of the source's
 * columns).
 *
 * `--keep` leaves the topics and databases in place (to profile a stage against the same backlog).
 *
 * Results: bench/results/sink-<workload>-<time>.json and bench/results/sink.md (latest run per
 * workload). The machine is shared: load averages are recorded; re-run when it is quiet.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { type PipelineConfig, pipelineConfig } from '../config/schema.js';
import { createSource } from '../connectors/index.js';
import { repoRoot } from '../infra/servers.js';
import { cpuMeter, serverPid } from './cpu.js';
import { createCodec } from '../pipeline/codec.js';
import { createKafka } from '../pipeline/kafka.js';
import { runSource } from '../pipeline/source-runner.js';
import { sourceTopics } from '../pipeline/topics.js';
import { createLogger } from '../util/log.js';
import { arg } from './args.js';

const WORKLOAD = arg('workload', 'pgbench') as 'pgbench' | 'uniform';
const CHANGES = Number(arg('changes', '100000'));
const TX = Number(arg('tx-size', '10'));
/** Partitions per table topic (the pipeline's default: 3). */
const PARTITIONS = Number(arg('partitions', '3'));
const RUNS = arg('runs', 'key:1,transaction:1')
  .split(',')
  .map((r) => {
    const [mode, workers] = r.split(':');
    return { mode: mode as 'key' | 'transaction', workers: Number(workers ?? 1) };
  });
const runName = (r: { mode: string; workers: number }) => `bench-${r.mode}-${r.workers}`;
/** `--profile <dir>`: CPU profiles of the sink worker processes. */
const PROFILE = arg('profile', '');
/** Extra sink settings for every run, e.g. '{"concurrency":6,"batchSize":2000}'. */
const SINK_OPTIONS = JSON.parse(arg('sink-options', '{}')) as Record<string, unknown>;
const SRC = process.env.CDC_PG_SOURCE_URL ?? 'postgres://postgres@127.0.0.1:55432/postgres';
const REP = process.env.CDC_PG_REPLICA_URL ?? 'postgres://postgres@127.0.0.1:55433/postgres';
const KAFKA = process.env.CDC_KAFKA_BROKERS ?? '127.0.0.1:19092';
const log = createLogger(process.env.CDC_LOG_LEVEL ?? 'warn');

const tag = Math.random().toString(16).slice(2, 8);
const srcDb = `bench_src_${tag}`;
const urlOf = (base: string, db: string) => base.replace(/\/[^/]*$/, `/${db}`);
const sec = (ms: number) => Math.round(ms) / 1000;
const hostPort = (url: string) => ({ host: new URL(url).hostname, port: new URL(url).port });

async function q(url: string, sql: string, params: unknown[] = []) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows as Record<string, unknown>[];
  } finally {
    await c.end();
  }
}

/** One connection held for polling (a new connection per poll forks a backend each time: CPU the timed drain needs). */
async function held(url: string): Promise<{ q(sql: string): Promise<Record<string, unknown>[]>; end(): Promise<void> }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return { q: async (sql) => (await c.query(sql)).rows as Record<string, unknown>[], end: () => c.end() };
}

function sh(cmd: string, argv: string[], input?: string): void {
  const r = spawnSync(cmd, argv, { input, encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')}: ${r.stderr || r.error?.message}`);
}

function pgbenchArgs(url: string, db: string): string[] {
  const { host, port } = hostPort(url);
  return ['-h', host, '-p', port, '-U', 'postgres', db];
}

/** A workload: its tables (with the columns to compare), set-up and the changes themselves. */
interface Workload {
  tables: Record<string, string[]>;
  /** Tables and initial rows on the source. */
  initSource(src: string): Promise<void>;
  /** Empty tables on a replica database (native subscriber); with `data`, also the source's initial rows. */
  initReplica(db: string, data: boolean): Promise<void>;
  /** Runs the workload on the source; returns the number of row changes. */
  run(src: string): Promise<number>;
}

const uniform: Workload = {
  tables: { accounts: ['aid', 'bid', 'abalance', 'filler'] },
  async initSource(src) {
    await q(src, `create table accounts (aid int primary key, bid int not null, abalance int not null, filler char(84))`);
  },
  async initReplica(db, data) {
    void data;
    await q(urlOf(REP, db), `create table accounts (aid int primary key, bid int not null, abalance int not null, filler char(84))`);
  },
  async run(src) {
    const inserts = Math.round(CHANGES * 0.25);
    const updates = Math.round(CHANGES * 0.65);
    const deletes = CHANGES - inserts - updates;
    await q(src, `create table bench_count (n bigint)`);
    await q(src, `insert into bench_count values (0)`);
    // Procedures may COMMIT: one source transaction per `tx` row changes.
    await q(
      src,
      `create procedure bench_work(ins int, upd int, del int, tx int) language plpgsql as $$
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
      end $$`,
    );
    await q(src, `call bench_work($1, $2, $3, $4)`, [inserts, updates, deletes, TX]);
    return Number((await q(src, `select n from bench_count`))[0]!.n);
  },
};

const PGBENCH_TABLES = {
  pgbench_accounts: ['aid', 'bid', 'abalance', 'filler'],
  pgbench_tellers: ['tid', 'bid', 'tbalance', 'filler'],
  pgbench_branches: ['bid', 'bbalance', 'filler'],
  pgbench_history: ['tid', 'bid', 'aid', 'delta', 'mtime', 'filler'],
};

const pgbench: Workload = {
  tables: PGBENCH_TABLES,
  async initSource(src) {
    sh('pgbench', ['-i', '-q', '-s', '1', ...pgbenchArgs(SRC, srcDb)]);
    void src;
  },
  async initReplica(db, data) {
    // Tables and primary keys, no rows (d: drop, t: tables, p: primary keys).
    sh('pgbench', ['-i', '-q', '-I', 'dtp', '-s', '1', ...pgbenchArgs(REP, db)]);
    if (!data) return;
    for (const t of Object.keys(PGBENCH_TABLES)) {
      const out = spawnSync('psql', [...pgbenchArgs(SRC, srcDb), '-c', `\\copy ${t} to stdout`], { encoding: 'utf8', maxBuffer: 1 << 30 });
      if (out.status !== 0) throw new Error(out.stderr);
      sh('psql', [...pgbenchArgs(REP, db), '-c', `\\copy ${t} from stdin`], out.stdout);
    }
  },
  async run(src) {
    void src;
    const txs = Math.round(CHANGES / 4);
    sh('pgbench', ['-n', '-c', '2', '-j', '2', '-t', String(Math.ceil(txs / 2)), ...pgbenchArgs(SRC, srcDb)]);
    return 4 * 2 * Math.ceil(txs / 2);
  },
};

/** Per table: row count and a checksum of the compared columns (`hashtext` of the row text). */
async function checksum(url: string, w: Workload): Promise<string> {
  const parts: string[] = [];
  for (const [t, cols] of Object.entries(w.tables)) {
    const [r] = await q(url, `select count(*) as n, coalesce(sum(hashtext(row(${cols.join(', ')})::text)::bigint), 0) as s from public.${t}`);
    parts.push(`${t}=${r!.n}:${r!.s}`);
  }
  return parts.join(' ');
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
    if (process.argv.includes('--keep')) console.log(`kept: topics ${prefix}.*, databases ${Object.values(dbs).join(' ')} (drop them yourself)`);
    else await cleanup(prefix, Object.values(dbs));
  }
}

async function run(prefix: string, dbs: Record<string, string>): Promise<void> {
  const w = WORKLOAD === 'pgbench' ? pgbench : uniform;
  const load0 = loadavg()[0]!;
  const results: Record<string, unknown> = {
    at: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg1mAtStart: load0 },
    workload:
      WORKLOAD === 'pgbench'
        ? { name: 'pgbench', description: 'pgbench -i -s 1, then TPC-B-like transactions (pgbench -n -c 2): 1 account, 1 teller, 1 branch updated, 1 history row inserted per transaction' }
        : { name: 'uniform', description: `accounts table: 25% inserts, 65% updates and 10% deletes of uniformly random rows, transactions of ${TX} changes` },
  };
  const tables = Object.keys(w.tables);
  await q(SRC, `create database ${srcDb}`);
  const src = urlOf(SRC, srcDb);
  await w.initSource(src);
  await q(src, `create table bench_marker (id int primary key)`);
  await q(src, `create publication bench_native for table ${[...tables, 'bench_marker'].join(', ')}`);
  for (const db of Object.values(dbs)) await q(REP, `create database ${db}`);
  const native = urlOf(REP, dbs.native!);
  await w.initReplica(dbs.native!, false);
  await q(native, `create table bench_marker (id int primary key)`);
  for (const r of RUNS) await w.initReplica(dbs[runName(r)]!, true);
  const { port } = hostPort(SRC);
  await q(native, `create subscription bench_sub_${tag} connection 'host=127.0.0.1 port=${port} dbname=${srcDb} user=postgres' publication bench_native with (copy_data = true)`);
  // The initial rows: the subscription copies them; then it waits, disabled, for the backlog.
  await waitUntil(async () => (await q(native, `select count(*)::int as n from pg_subscription_rel where srsubstate <> 'r'`))[0]!.n === 0, 600_000, 200);
  await q(native, `alter subscription bench_sub_${tag} disable`);

  // Our source connector captures the same workload into Kafka (streaming only: the replicas hold the initial rows).
  const cfg: PipelineConfig = pipelineConfig.parse({
    name: prefix,
    kafka: { brokers: [KAFKA], topicPrefix: prefix, partitions: PARTITIONS },
    snapshot: { mode: 'never' },
    sources: [
      {
        name: 'src',
        url: src,
        tables: { include: tables.map((t) => `public.${t}`) },
        postgres: { slot: `bench_cdc_${tag}`, publication: `bench_cdc_${tag}`, heartbeatIntervalMs: 0, keylessTables: 'replica-identity-full' },
      },
    ],
    sinks: RUNS.map((r) => ({ name: runName(r), url: urlOf(REP, dbs[runName(r)]!), mode: r.mode, ...SINK_OPTIONS })),
    log: { level: 'warn' },
  });
  const kafka = createKafka(cfg.kafka);
  const srcAc = new AbortController();
  const connector = await createSource(cfg.sources[0]!, cfg);
  const sourceDone = runSource({ cfg, source: cfg.sources[0]!, connector, kafka, codec: createCodec(cfg, kafka), log: log.child({ source: 'src' }), signal: srcAc.signal });
  sourceDone.catch((err) => log.error({ err: (err as Error).message }, 'source failed'));
  await waitUntil(async () => (await q(src, `select count(*)::int as n from pg_replication_slots where slot_name = $1 and active`, [`bench_cdc_${tag}`]))[0]!.n === 1, 60_000, 200);

  const t0 = Date.now();
  const changes = await w.run(src);
  await q(src, `insert into bench_marker values (1)`);
  results.workload = { ...(results.workload as object), rowChanges: changes, generateSeconds: sec(Date.now() - t0) };
  const expected = await checksum(src, w);
  console.log(`workload ${WORKLOAD}: ${changes} row changes in ${sec(Date.now() - t0)} s`);

  // Wait until the connector has published everything (topic ends stop moving).
  const topics = tables.map((t) => sourceTopics(prefix, 'src').table({ db: srcDb, schema: 'public', table: t }));
  const admin = kafka.admin();
  await admin.connect();
  const allEnds = async () => (await Promise.all(topics.map(async (topic) => (await admin.fetchTopicOffsets(topic).catch(() => [])).map((o) => ({ topic, partition: o.partition, high: o.high }))))).flat();
  let last = '';
  await waitUntil(
    async () => {
      const now = JSON.stringify(await allEnds());
      const stable = now === last && now !== '[]';
      last = now;
      return stable;
    },
    900_000,
    3000,
  );
  srcAc.abort();
  await sourceDone.catch(() => undefined);
  const ends = await allEnds();
  const records = ends.reduce((n, e) => n + Number(e.high), 0);
  console.log(`kafka backlog: ${records} records in ${topics.length} topics`);
  results.kafka = { topics: topics.length, partitions: ends.length, records };

  // 1. Native logical replication drains its backlog.
  const runDir = join(repoRoot, '.run');
  const servers = { 'pg-source': serverPid(runDir, 'pg-source'), 'pg-replica': serverPid(runDir, 'pg-replica'), kafka: serverPid(runDir, 'kafka') };
  const nativeCpu = cpuMeter(servers);
  const tn = Date.now();
  await q(native, `alter subscription bench_sub_${tag} enable`);
  const nativePoll = await held(native);
  await waitUntil(async () => (await nativePoll.q(`select count(*)::int as n from bench_marker`))[0]!.n === 1, 900_000, 20);
  await nativePoll.end();
  const nativeMs = Date.now() - tn;
  const nativeSum = await checksum(native, w);
  console.log(`native subscription: ${sec(nativeMs)} s, ${Math.round(changes / (nativeMs / 1000))} rows/s, ${nativeSum === expected ? 'equal' : `DIFFERENT ${nativeSum} vs ${expected}`}`);
  const nCpu = nativeCpu.since();
  console.log(`  cpu seconds: ${JSON.stringify(nCpu)}`);
  const runs: Record<string, unknown>[] = [
    { name: 'postgresql-native-subscription', seconds: sec(nativeMs), rowsPerSecond: Math.round(changes / (nativeMs / 1000)), equal: nativeSum === expected, cpuSeconds: nCpu },
  ];
  await q(native, `alter subscription bench_sub_${tag} disable`);

  // 2. The ceiling of any kafkajs-based sink: a consumer that only reads the same backlog (and one
  // that also JSON-parses each value), with the sink's fetch settings.
  for (const parse of [false, true]) {
    const out = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'bench', 'kafka-read.ts'), '--brokers', KAFKA, '--topics', topics.join(','), '--records', String(records), ...(parse ? ['--parse'] : [])], {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 600_000,
    });
    if (out.status !== 0) throw new Error(`kafka-read: ${out.stderr}`);
    const r = JSON.parse(out.stdout.trim().split('\n').pop()!) as { records: number; seconds: number; cpuSeconds: number };
    const name = parse ? 'kafkajs-read-and-JSON.parse-only' : 'kafkajs-read-only';
    console.log(`${name}: ${sec(r.seconds * 1000)} s, ${Math.round(r.records / r.seconds)} records/s, cpu ${r.cpuSeconds.toFixed(2)} s`);
    runs.push({ name, seconds: sec(r.seconds * 1000), rowsPerSecond: Math.round(changes / r.seconds), equal: null, cpuSeconds: { worker1: r.cpuSeconds }, ceiling: true });
  }

  // 3. Our sink, per run, from the same Kafka backlog, as worker processes (`cdc run --only`).
  const dir0 = mkdtempSync(join(tmpdir(), 'cdc-bench-'));
  const cfgFile = join(dir0, 'pipeline.json');
  writeFileSync(cfgFile, JSON.stringify({ ...cfg, log: { level: 'warn' } }));
  try {
    for (const r of RUNS) {
      const sinkCfg = cfg.sinks.find((s) => s.name === runName(r))!;
      const url = sinkCfg.url;
      const logFile = join(dir0, `${sinkCfg.name}.log`);
      const logFd = openSync(logFile, 'a');
      const ts = Date.now();
      const workers = Array.from({ length: r.workers }, () =>
        spawn(process.execPath, [...(PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${join(PROFILE, sinkCfg.name)}`] : []), join(repoRoot, 'bin', 'cdc.js'), 'run', '-c', cfgFile, '--only', sinkCfg.name], {
          stdio: ['ignore', 'ignore', logFd],
          env: process.env,
        }),
      );
      let firstRow = 0;
      const poll = await held(url);
      let meter: ReturnType<typeof cpuMeter> | null = null;
      let used: Record<string, number> = {};
      try {
        await waitUntil(
          async () => {
            try {
              const rows = await poll.q(`select topic, "partition" as p, next_offset::text as o from cdc_meta.offsets`);
              if (!firstRow && rows.length > 0) {
                firstRow = Date.now();
                meter = cpuMeter({ ...servers, ...Object.fromEntries(workers.map((p, i) => [`worker${i + 1}`, p.pid ?? null])) });
              }
              const stored = new Map(rows.map((x) => [`${String(x.topic)}/${Number(x.p)}`, String(x.o)]));
              const done = ends.every((e) => e.high === '0' || stored.get(`${e.topic}/${e.partition}`) === e.high);
              if (done && meter) used = meter.since();
              return done;
            } catch {
              return false;
            }
          },
          900_000,
          50,
        );
      } catch (err) {
        throw new Error(`${runName(r)}: ${(err as Error).message}\n${existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n') : ''}`);
      } finally {
        for (const p of workers) p.kill('SIGTERM');
        await poll.end().catch(() => undefined);
      }
      const doneAt = Date.now();
      const sum = await checksum(url, w);
      const total = doneAt - ts;
      const apply = doneAt - (firstRow || ts);
      console.log(`sink ${r.mode} mode, ${r.workers} worker(s): ${sec(apply)} s from the first commit (${sec(total)} s with start-up), ${Math.round(changes / (apply / 1000))} rows/s, ${sum === expected ? 'equal' : `DIFFERENT ${sum}`}`);
      console.log(`  cpu seconds: ${JSON.stringify(used)}`);
      runs.push({
        name: `cdc-sink-${r.mode}-mode-${r.workers}-worker${r.workers > 1 ? 's' : ''}`,
        seconds: sec(apply),
        secondsWithStartup: sec(total),
        rowsPerSecond: Math.round(changes / (apply / 1000)),
        rowsPerSecondWithStartup: Math.round(changes / (total / 1000)),
        equal: sum === expected,
        cpuSeconds: used,
        settings: { workers: r.workers, batchSize: sinkCfg.batchSize, concurrency: sinkCfg.concurrency, conflict: sinkCfg.conflict.strategy },
      });
      await new Promise((res) => setTimeout(res, 1000));
    }
  } finally {
    rmSync(dir0, { recursive: true, force: true });
  }
  results.runs = runs;
  results.machine = { ...(results.machine as object), loadavg1mAtEnd: loadavg()[0] };
  await admin.disconnect();

  const dir = join(repoRoot, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  writeFileSync(join(dir, `sink-${WORKLOAD}-${stamp}.json`), `${JSON.stringify(results, null, 2)}\n`);
  const section = [
    `## Workload \`${WORKLOAD}\` (${results.at as string})`,
    '',
    `${(results.workload as { description: string }).description}. Backlog: ${changes} row changes, ${records} Kafka records in ${topics.length} topics (${PARTITIONS} partitions each).`,
    `Machine: ${cpus().length} cores (${cpus()[0]?.model}); load average ${load0.toFixed(2)} at start, ${loadavg()[0]!.toFixed(2)} at end (shared with other work: noisy, re-run when quiet).`,
    '',
    '| drain | seconds | rows/s | CPU seconds: applier | replica server | source server | Kafka | CPU µs per row change | replica equal to source |',
    '|---|---|---|---|---|---|---|---|---|',
    ...runs.map((x) => {
      const cpu = (x.cpuSeconds ?? {}) as Record<string, number>;
      const workers = Object.entries(cpu).filter(([k]) => k.startsWith('worker'));
      // Native: the apply worker runs in the replica server and decoding in the source's walsender.
      const applier = workers.length > 0 ? workers.map(([, v]) => v.toFixed(2)).join(' + ') : '(in the servers)';
      const all = Object.values(cpu).reduce((a, b) => a + b, 0);
      const f = (v: number | undefined) => (v ?? 0).toFixed(2);
      return `| ${x.name as string} | ${x.seconds as number}${x.secondsWithStartup ? ` (${x.secondsWithStartup as number} with start-up)` : ''} | ${x.rowsPerSecond as number} | ${applier} | ${f(cpu['pg-replica'])} | ${f(cpu['pg-source'])} | ${f(cpu.kafka)} | ${Math.round((all / changes) * 1e6)} | ${x.ceiling ? '(reads only)' : x.equal ? 'yes' : 'NO'} |`;
    }),
    '',
  ].join('\n');
  const mdFile = join(dir, 'sink.md');
  const header = [
    '# Sink apply throughput vs PostgreSQL logical replication',
    '',
    'Generated by `npx tsx bench/sink.ts --workload <w>`: one backlog drained by a native subscription and by this sink, same run, same machine.',
    'Native: from ALTER SUBSCRIPTION ENABLE to the marker row (written after the workload) on the subscriber. Sink: `cdc run --only <sink>` worker processes,',
    'from the first replica commit to every partition offset stored at the end of its topic (start-up = process start, Kafka group join). Conflict strategy lww; batchSize 1000 and concurrency 3 (the defaults) unless the run says otherwise (--sink-options; settings per run in the JSON).',
    'CPU seconds: user + system time of each process tree over the timed drain, read from /proc (PostgreSQL servers include their exited backends; a Node worker includes its GC threads).',
    '',
  ].join('\n');
  const old = existsSync(mdFile) ? readFileSync(mdFile, 'utf8') : '';
  const sections = new Map<string, string>();
  for (const m of old.matchAll(/^## Workload `(\w+)`[\s\S]*?(?=^## Workload `|(?![\s\S]))/gm)) sections.set(m[1]!, m[0].trimEnd());
  sections.set(WORKLOAD, section.trimEnd());
  writeFileSync(mdFile, `${header}\n${[...sections.values()].join('\n\n')}\n`);
  console.log(section);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
