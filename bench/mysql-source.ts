/**
 * MySQL/MariaDB source speed on a sysbench write workload (oltp_write_only: 4 row changes per
 * transaction), side by side with a native MariaDB replica, in one run:
 *
 *   drain        a backlog written by sysbench with nothing attached, read by (a) a native
 *                MariaDB replica (IO + SQL thread, from the same GTID) and (b) our connector
 *                (binlog -> Kafka, transactional publisher, acks=all, JSON), one after the other
 *   saturate     sysbench flat out with the connector attached: source tps, connector lag when
 *                sysbench stops, commit-to-Kafka latency of probe rows written meanwhile
 *   latency      sysbench at a steady rate: commit-to-Kafka latency of probe rows
 *
 * Latency is measured with probe rows (MariaDB's binlog has second-resolution timestamps): a
 * probe INSERT is committed every 20 ms on its own connection; its latency is the time from the
 * client receiving the commit's OK to Kafka acknowledging the batch that holds the row.
 *
 * Dedicated MariaDB instances (maria-bench-src, maria-bench-rep, ports 23381/23382, below the ephemeral range) are created
 * and destroyed here; the shared Kafka broker carries the topics (deleted at the end).
 *
 *   npx tsx bench/mysql-source.ts [backlogSeconds=30] [saturateSeconds=20] [latencySeconds=20]
 *
 * Writes bench/results/mysql-source.{json,md}. Installs Debian's sysbench when missing.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { pipelineConfig } from '../config/schema.js';
import { type BinlogEvent, openBinlogStream } from '../connectors/mysql/binlog-stream.js';
import { Collations } from '../connectors/mysql/charset.js';
import { EV, decodeMariaGtid } from '../connectors/mysql/decode.js';
import { BinlogAssembler } from '../connectors/mysql/events.js';
import { tableFilter } from '../connectors/mysql/filter.js';
import { MariaGtidList, parseMariaGtid } from '../connectors/mysql/gtid.js';
import { createMysqlSource } from '../connectors/mysql/index.js';
import type { SourceBatch, SourceRecord } from '../connectors/source.js';
import type { ChangeEvent } from '../schemas/change-event.js';
import { envInt } from '../infra/env.js';
import { endpoints, mariadbServer } from '../infra/servers.js';
import { createCodec } from '../pipeline/codec.js';
import { createKafka } from '../pipeline/kafka.js';
import { createPublisher } from '../pipeline/publisher.js';
import { pipelineTopics, sourceTopics } from '../pipeline/topics.js';
import type { MysqlPosition } from '../schemas/position.js';
import { createLogger } from '../util/log.js';

const BACKLOG_S = Number(process.argv[2] ?? 30);
const SATURATE_S = Number(process.argv[3] ?? 20);
const LATENCY_S = Number(process.argv[4] ?? 20);
const THREADS = 8;
const TABLES = 4;
const TABLE_SIZE = 20_000;
const STEADY_TPS = 250; // 1,000 row changes/s

const SRC_PORT = envInt('CDC_BENCH_MARIA_SRC_PORT', 23381);
const REP_PORT = envInt('CDC_BENCH_MARIA_REP_PORT', 23382);
const src = mariadbServer({ name: 'maria-bench-src', port: SRC_PORT, serverId: 81 });
const rep = mariadbServer({ name: 'maria-bench-rep', port: REP_PORT, serverId: 82 });
const SRC_URL = `mysql://root@127.0.0.1:${SRC_PORT}`;
const REP_URL = `mysql://root@127.0.0.1:${REP_PORT}`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function ensureSysbench(): void {
  try {
    execFileSync('sysbench', ['--version'], { stdio: 'ignore' });
  } catch {
    console.log('installing sysbench (apt-get) ...');
    execFileSync('apt-get', ['install', '-y', '-q', 'sysbench'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
}

function sh(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${out.slice(-800)}`))));
  });
}

const sysbench = (cmd: 'prepare' | 'run', extra: string[] = []) =>
  sh('sysbench', [
    'oltp_write_only',
    '--db-driver=mysql',
    '--mysql-host=127.0.0.1',
    `--mysql-port=${SRC_PORT}`,
    '--mysql-user=root',
    '--mysql-db=sbtest',
    `--tables=${TABLES}`,
    `--table-size=${TABLE_SIZE}`,
    `--threads=${THREADS}`,
    '--rand-seed=42',
    ...extra,
    cmd,
  ]);
const tpsOf = (out: string) => Number(/transactions:\s+\d+\s+\(([0-9.]+) per sec/.exec(out)?.[1] ?? 'NaN');
const txOf = (out: string) => Number(/transactions:\s+(\d+)/.exec(out)?.[1] ?? 'NaN');

async function conn(url: string): Promise<mysql.Connection> {
  return mysql.createConnection({ uri: url, multipleStatements: true, supportBigNumbers: true, bigNumberStrings: true });
}

async function gtidPos(c: mysql.Connection, variable = '@@global.gtid_binlog_pos'): Promise<string> {
  const [[r]] = (await c.query(`SELECT ${variable} AS g`)) as unknown as [{ g: string }[]];
  return String(r?.g ?? '');
}

/** The source's domain-81 GTID of a position string. */
function seqOf(pos: string): bigint {
  const g = pos.split(',').filter(Boolean).map(parseMariaGtid).find((x) => x.domain === 81);
  return g?.seq ?? 0n;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface Result {
  at: string;
  machine: { cores: number; cpu: string; loadStart: number[]; loadEnd?: number[] };
  workload: string;
  drain?: {
    generateTps: number;
    transactions: number;
    changes: number;
    native: { seconds: number; changesPerS: number; note: string };
    ours: { seconds: number; eventsPerS: number; kafkaTransactions: number; cpuUsPerEvent: number };
  };
  cpu?: { events: number; decodeUsPerEvent: number; encodeUsPerEvent: number; decodeOnlyEventsPerCpuS: number };
  saturate?: { seconds: number; sourceTps: number; changesPerS: number; catchUpS: number; probes: number; p50Ms: number; p99Ms: number; maxMs: number };
  latency?: { targetChangesPerS: number; achievedTps: number; probes: number; p50Ms: number; p90Ms: number; p99Ms: number; maxMs: number };
  notes: string[];
}

async function main(): Promise<void> {
  ensureSysbench();
  const result: Result = {
    at: new Date().toISOString(),
    machine: { cores: cpus().length, cpu: cpus()[0]?.model ?? '?', loadStart: loadavg() },
    workload: `sysbench oltp_write_only, ${TABLES} tables x ${TABLE_SIZE} rows, ${THREADS} threads (4 row changes per transaction)`,
    notes: [],
  };
  const tag = `bench-my-${Date.now().toString(36)}`;
  console.log('starting dedicated MariaDB source and replica ...');
  await Promise.all([src.destroy(), rep.destroy()]);
  await Promise.all([src.start(), rep.start()]);
  const s = await conn(SRC_URL);
  const r = await conn(REP_URL);
  const kafka = createKafka({ brokers: [endpoints.kafka], clientId: 'bench-mysql' });
  let stopOurs: (() => Promise<void>) | undefined;
  try {
    // The replica starts from here: the servers' own set-up (users) is not replicated.
    const pInit = await gtidPos(s);
    await s.query('CREATE DATABASE sbtest; CREATE TABLE sbtest.probe (id BIGINT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(20))');
    console.log('sysbench prepare ...');
    await sysbench('prepare');

    // The replica copies everything up to here, then stops (IO and SQL thread) before the backlog.
    const p0 = await gtidPos(s);
    await r.query(`CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${SRC_PORT}, MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos`);
    await r.query(`SET GLOBAL gtid_slave_pos = '${pInit}'`);
    await r.query('START SLAVE');
    while (seqOf(await gtidPos(r, '@@global.gtid_slave_pos')) < seqOf(p0)) await sleep(100);
    await r.query('STOP SLAVE');

    // ---- backlog ----
    console.log(`writing a ${BACKLOG_S} s backlog with nothing attached ...`);
    const gen = await sysbench('run', [`--time=${BACKLOG_S}`]);
    const p1 = await gtidPos(s);
    const transactions = txOf(gen);

    console.log('native replica draining ...');
    let t0 = performance.now();
    await r.query('START SLAVE');
    while (seqOf(await gtidPos(r, '@@global.gtid_slave_pos')) < seqOf(p1)) await sleep(20);
    const nativeS = (performance.now() - t0) / 1000;
    await r.query('STOP SLAVE');
    const [[slaveCfg]] = (await r.query('SELECT @@slave_parallel_threads AS t, @@slave_parallel_mode AS m')) as unknown as [{ t: number; m: string }[]];

    console.log('our connector draining ...');
    const cfg = pipelineConfig.parse({
      name: tag,
      kafka: { brokers: [endpoints.kafka], partitions: 3 },
      sources: [{ name: 'my', url: SRC_URL, tables: { include: ['sbtest.*'] }, mysql: { serverId: 9181, heartbeatIntervalMs: 1000 } }],
      snapshot: { mode: 'never' },
      log: { level: 'warn' },
    });
    const source = cfg.sources[0]!;
    const publisher = await createPublisher({
      kafka,
      codec: createCodec(cfg, kafka),
      topics: sourceTopics(tag, 'my'),
      sourceName: 'my',
      offsetsTopic: pipelineTopics(tag).offsets,
      topicSpec: { partitions: 3, replicationFactor: 1 },
      transactional: true,
    });
    const stats = { events: 0, batches: 0, lastCp: null as MysqlPosition | null, probeAck: [] as number[], recordProbes: false };
    const probeCommit = new Map<string, number>();
    let startedAt = 0;
    // Start at the backlog's first GTID (the hook the snapshot engine uses to set the start).
    const connector = createMysqlSource(source, cfg, {
      onFirstStart: async (info) => {
        startedAt = performance.now();
        return { kind: 'mysql', file: info.position.file, pos: 4, gtidSet: p0 };
      },
    });
    const ac = new AbortController();
    let stored: MysqlPosition | null = null;
    const done = connector.run({
      async publish(b: SourceBatch) {
        await publisher.publish(b);
        const now = performance.now();
        stats.batches++;
        for (const rec of b.records) {
          if (rec.type !== 'change') continue;
          stats.events++;
          if (stats.recordProbes && rec.event.source.table === 'probe') {
            const at = probeCommit.get(String(rec.event.after?.id));
            if (at !== undefined) stats.probeAck.push(now - at);
          }
        }
        if (b.checkpoint) stored = b.checkpoint as MysqlPosition;
      },
      loadCheckpoint: async () => stored,
      log: createLogger('warn'),
      signal: ac.signal,
    });
    done.catch((err: unknown) => console.error('connector failed:', err));
    stopOurs = async () => {
      ac.abort();
      await done.catch(() => undefined);
      await connector.close();
      await publisher.close();
    };
    const cpu0 = process.cpuUsage();
    const reached = (pos: string) => {
      const target = pos.split(',').filter(Boolean).map(parseMariaGtid).find((g) => g.domain === 81)!;
      const cp = stored as MysqlPosition | null;
      return cp?.gtidSet !== undefined && MariaGtidList.parse(cp.gtidSet).contains(target);
    };
    while (!reached(p1)) await sleep(20);
    const oursS = (performance.now() - startedAt) / 1000;
    const drained = stats.events;
    const cpu = process.cpuUsage(cpu0);
    result.drain = {
      generateTps: tpsOf(gen),
      transactions,
      changes: drained,
      native: {
        seconds: nativeS,
        changesPerS: drained / nativeS,
        note: `slave_parallel_threads=${slaveCfg?.t}, slave_parallel_mode=${slaveCfg?.m}, IO + SQL thread from the backlog's first GTID`,
      },
      ours: { seconds: oursS, eventsPerS: drained / oursS, kafkaTransactions: stats.batches, cpuUsPerEvent: (cpu.user + cpu.system) / drained },
    };
    console.log(result.drain);

    // ---- probes ----
    const probeConn = await conn(SRC_URL);
    let probing = false;
    const probeLoop = async () => {
      while (probing) {
        const [res] = (await probeConn.query("INSERT INTO sbtest.probe (note) VALUES ('p')")) as unknown as [{ insertId: number | string }];
        probeCommit.set(String(res.insertId), performance.now());
        await sleep(20);
      }
    };

    // ---- saturate ----
    console.log(`sysbench flat out for ${SATURATE_S} s with the connector attached ...`);
    stats.probeAck = [];
    stats.recordProbes = true;
    probing = true;
    const probes1 = probeLoop();
    const before = stats.events;
    const sat = await sysbench('run', [`--time=${SATURATE_S}`]);
    probing = false;
    await probes1;
    const p2 = await gtidPos(s);
    t0 = performance.now();
    while (!reached(p2)) await sleep(10);
    const catchUpS = (performance.now() - t0) / 1000;
    stats.recordProbes = false;
    const l1 = [...stats.probeAck].sort((a, b) => a - b);
    result.saturate = {
      seconds: SATURATE_S,
      sourceTps: tpsOf(sat),
      changesPerS: (stats.events - before) / SATURATE_S,
      catchUpS,
      probes: l1.length,
      p50Ms: percentile(l1, 50),
      p99Ms: percentile(l1, 99),
      maxMs: l1.at(-1) ?? Number.NaN,
    };
    console.log(result.saturate);

    // ---- steady rate ----
    console.log(`sysbench at ${STEADY_TPS} tps for ${LATENCY_S} s ...`);
    stats.probeAck = [];
    stats.recordProbes = true;
    probing = true;
    const probes2 = probeLoop();
    const steady = await sysbench('run', [`--time=${LATENCY_S}`, `--rate=${STEADY_TPS}`]);
    probing = false;
    await probes2;
    const p3 = await gtidPos(s);
    while (!reached(p3)) await sleep(10);
    stats.recordProbes = false;
    const l2 = [...stats.probeAck].sort((a, b) => a - b);
    result.latency = {
      targetChangesPerS: STEADY_TPS * 4,
      achievedTps: tpsOf(steady),
      probes: l2.length,
      p50Ms: percentile(l2, 50),
      p90Ms: percentile(l2, 90),
      p99Ms: percentile(l2, 99),
      maxMs: l2.at(-1) ?? Number.NaN,
    };
    console.log(result.latency);
    await probeConn.end();

    // ---- CPU cost per event, without Kafka: decode the backlog's binlog again, then JSON-encode ----
    console.log('measuring decode and encode cost on the backlog ...');
    const raw: BinlogEvent[] = [];
    const st = await openBinlogStream({ url: SRC_URL, serverId: 9182, reportHost: 'bench-decode', flavor: 'mariadb', start: { gtid: p0 }, heartbeatMs: 1000 });
    const p1seq = seqOf(p1);
    for (;;) {
      const ev = await st.next();
      if (!ev) break;
      raw.push(ev);
      if (ev.header.type === EV.MARIA_GTID && decodeMariaGtid(ev.body).seq > p1seq) break;
    }
    await st.close();
    const collations = new Collations();
    const run = () => {
      const asm = new BinlogAssembler(
        { sourceName: 'my', version: 'bench', origin: 'my', flavor: 'mariadb', filter: tableFilter({ include: ['sbtest.*'], exclude: [] }), collations },
        { file: 'binlog.000001', pos: 4, gtidSet: p0 },
      );
      const out: SourceRecord[] = [];
      for (const ev of raw) asm.handle(ev, out);
      return out;
    };
    run(); // warm-up
    let t = process.cpuUsage();
    const out = run();
    let c = process.cpuUsage(t);
    const changes = out.filter((x) => x.type === 'change').map((x) => (x as { event: ChangeEvent }).event);
    const decodeUs = (c.user + c.system) / changes.length;
    const codec = createCodec(cfg, kafka);
    for (const e of changes.slice(0, 2000)) await codec.encodeChange(e);
    t = process.cpuUsage();
    for (const e of changes) await codec.encodeChange(e);
    c = process.cpuUsage(t);
    result.cpu = { events: changes.length, decodeUsPerEvent: decodeUs, encodeUsPerEvent: (c.user + c.system) / changes.length, decodeOnlyEventsPerCpuS: 1e6 / decodeUs };
    console.log(result.cpu);
  } finally {
    await stopOurs?.();
    await s.end().catch(() => undefined);
    await r.end().catch(() => undefined);
    const admin = kafka.admin();
    await admin.connect();
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(`${tag}.`));
    if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => undefined);
    await admin.disconnect();
    await Promise.all([src.destroy(), rep.destroy()]);
  }
  result.machine.loadEnd = loadavg();
  await report(result);
}

async function report(r: Result): Promise<void> {
  const dir = join(import.meta.dirname, 'results');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'mysql-source.json'), `${JSON.stringify(r, null, 2)}\n`);
  const f = (n: number | undefined, d = 0) => (n === undefined || Number.isNaN(n) ? '-' : n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));
  const d = r.drain;
  const s = r.saturate;
  const l = r.latency;
  const md = `# MySQL/MariaDB source speed (${r.workload})

${r.at}, ${r.machine.cores} cores (${r.machine.cpu}), load average ${f(r.machine.loadStart[0], 2)} at start, ${f(r.machine.loadEnd?.[0], 2)} at end.
Dedicated MariaDB 10.11 source and replica (sync_binlog=1, innodb_flush_log_at_trx_commit=1), the shared Kafka broker, the connector and sysbench all share this machine; other engineers' tests run on it too, so the numbers are noisy: compare within one run.

## Draining a backlog (${f(d?.transactions)} transactions = ${f(d?.changes)} row changes)

| consumer | seconds | row changes/s |
|---|---|---|
| cdc connector (binlog -> Kafka, transactional publisher, acks=all, JSON) | ${f(d?.ours.seconds, 1)} | ${f(d?.ours.eventsPerS)} |
| native MariaDB replica (${d?.native.note ?? ''}) | ${f(d?.native.seconds, 1)} | ${f(d?.native.changesPerS)} |

The backlog was written at ${f(d?.generateTps)} tps (${f((d?.generateTps ?? 0) * 4)} row changes/s) by sysbench with nothing attached; the two consumers drained it one after the other. The connector used ${f(d?.ours.kafkaTransactions)} Kafka transactions and ${f(d?.ours.cpuUsPerEvent, 1)} µs of CPU per event (connector + publisher + kafkajs, in this process).

CPU cost without Kafka, on the same ${f(r.cpu?.events)} events: binlog decode to change events ${f(r.cpu?.decodeUsPerEvent, 2)} µs/event (${f(r.cpu?.decodeOnlyEventsPerCpuS)} events per CPU-second), JSON encoding ${f(r.cpu?.encodeUsPerEvent, 2)} µs/event.

## Keeping up with sysbench flat out (${s?.seconds} s)

Source: ${f(s?.sourceTps)} tps while the connector streamed (it published ${f(s?.changesPerS)} row changes/s). When sysbench stopped, the connector had everything ${f(s?.catchUpS, 2)} s later.
Commit-to-Kafka latency of ${f(s?.probes)} probe rows meanwhile: p50 ${f(s?.p50Ms, 1)} ms, p99 ${f(s?.p99Ms, 1)} ms, max ${f(s?.maxMs, 1)} ms.

## Commit-to-Kafka latency at a steady rate

sysbench --rate=${f((l?.targetChangesPerS ?? 0) / 4)} (${f(l?.targetChangesPerS)} row changes/s target, ${f(l?.achievedTps)} tps achieved); ${f(l?.probes)} probe rows, each from the client's commit OK to Kafka's acknowledgement of its batch:

| p50 | p90 | p99 | max |
|---|---|---|---|
| ${f(l?.p50Ms, 1)} ms | ${f(l?.p90Ms, 1)} ms | ${f(l?.p99Ms, 1)} ms | ${f(l?.maxMs, 1)} ms |
${r.notes.length > 0 ? `\n${r.notes.map((n) => `- ${n}`).join('\n')}\n` : ''}`;
  await writeFile(join(dir, 'mysql-source.md'), md);
  console.log(md);
}

await main();
process.exit(0);
