/**
 * PostgreSQL source speed, on a pgbench (TPC-B-like) workload, scale 10:
 *   drain        a backlog of N pgbench transactions written while nothing consumed the slots,
 *                then drained by our connector (WAL -> Kafka, acks=all) and, in the same run, by
 *                PostgreSQL's own logical replication (publication -> subscription on the replica
 *                cluster), each from its own slot created before the backlog.
 *   saturate     pgbench at full speed for D seconds with our connector streaming: source tps,
 *                our lag at the end and the time to catch up (does it keep up?).
 *   latency      pgbench --rate for a steady 5k changes/s (4 changes per transaction) for D
 *                seconds: commit-to-Kafka latency of every event, from the commit timestamp in
 *                the event to the moment Kafka acknowledged its batch.
 *
 *   npx tsx bench/postgres-source.ts [--scale 10] [--backlog 40000] [--seconds 30] [--rate 1250] [--phases drain,saturate,latency]
 *
 * The connector runs in this process with the real publisher (idempotent producer, acks=all).
 * Results: bench/results/postgres-source.json and postgres-source.md.
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pipelineConfig } from '../config/schema.js';
import { createPostgresSource } from '../connectors/postgres/index.js';
import { parseLsn } from '../connectors/postgres/lsn.js';
import type { SourceBatch } from '../connectors/source.js';
import { createCodec } from '../pipeline/codec.js';
import { createKafka } from '../pipeline/kafka.js';
import { createPublisher } from '../pipeline/publisher.js';
import { sourceTopics } from '../pipeline/topics.js';
import { createLogger } from '../util/log.js';
import { sleep } from '../util/retry.js';
import { arg } from './args.js';

const scale = Number(arg('scale', '10'));
const backlogTx = Number(arg('backlog', '40000'));
const seconds = Number(arg('seconds', '30'));
const rate = Number(arg('rate', '1250'));
const phases = new Set(arg('phases', 'drain,saturate,latency').split(','));
const PGBENCH = process.env.PGBENCH ?? '/usr/lib/postgresql/15/bin/pgbench';
const SRC = { host: '127.0.0.1', port: Number(process.env.CDC_PG_SOURCE_PORT ?? 55432) };
const REP = { host: '127.0.0.1', port: Number(process.env.CDC_PG_REPLICA_PORT ?? 55433) };
const KAFKA = process.env.CDC_KAFKA_BROKERS ?? `127.0.0.1:${process.env.CDC_KAFKA_PORT ?? 19092}`;
const url = (s: typeof SRC, db: string) => `postgres://postgres@${s.host}:${s.port}/${db}`;
const tag = Math.random().toString(16).slice(2, 8);
const db = `bench_pgsrc_${tag}`;
const TABLES = ['pgbench_accounts', 'pgbench_branches', 'pgbench_tellers', 'pgbench_history'];

async function q(u: string, text: string, params: unknown[] = []): Promise<Record<string, string>[]> {
  const c = new pg.Client({ connectionString: u, types: { getTypeParser: () => (v: string) => v } });
  await c.connect();
  try {
    return (await c.query(text, params)).rows as Record<string, string>[];
  } finally {
    await c.end();
  }
}

/** Runs a command; resolves with its stdout. */
function sh(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code) => (code === 0 ? resolve(out + err) : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${err.slice(-800)}`))));
  });
}

const pgbenchArgs = (extra: string[]) => ['-h', SRC.host, '-p', String(SRC.port), '-U', 'postgres', ...extra, db];
const tpsOf = (out: string) => Number(/tps = ([0-9.]+)/.exec(out)?.[1] ?? 'NaN');

async function currentLsn(): Promise<bigint> {
  return parseLsn((await q(url(SRC, db), 'select pg_current_wal_lsn()::text as l'))[0]!.l!);
}

async function confirmed(slot: string): Promise<bigint> {
  const [r] = await q(url(SRC, db), 'select confirmed_flush_lsn::text as l from pg_replication_slots where slot_name = $1', [slot]);
  return r?.l ? parseLsn(r.l) : 0n;
}

async function waitConfirmed(slot: string, lsn: bigint, timeoutS = 900): Promise<number> {
  const t0 = performance.now();
  while ((await confirmed(slot)) < lsn) {
    if (performance.now() - t0 > timeoutS * 1000) throw new Error(`slot ${slot} did not reach the backlog end in ${timeoutS} s`);
    await sleep(20);
  }
  return (performance.now() - t0) / 1000;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Our connector with the real publisher, in this process; counts events and commit-to-ack latency. */
async function startOurs(slot: string) {
  const cfg = pipelineConfig.parse({
    name: `bench-${tag}`,
    kafka: { brokers: KAFKA.split(','), partitions: 3 },
    sources: [{ name: 'pg', url: url(SRC, db), postgres: { slot, publication: slot, heartbeatIntervalMs: 0, keylessTables: 'replica-identity-full' } }],
  });
  const source = cfg.sources[0]!;
  const kafka = createKafka(cfg.kafka);
  const publisher = await createPublisher({
    kafka,
    codec: createCodec(cfg, kafka),
    topics: sourceTopics(cfg.name, 'pg'),
    sourceName: 'pg',
    topicSpec: { partitions: 3, replicationFactor: 1 },
  });
  const connector = createPostgresSource(source, cfg);
  await connector.validate();
  // latencies: commit -> Kafka ack; toConnector: commit -> the connector built the event (its
  // ts_ms); inPipeline: event built -> Kafka ack.
  const stats = { events: 0, latencies: [] as number[], toConnector: [] as number[], inPipeline: [] as number[], record: false, markerAckedAt: 0 };
  const ac = new AbortController();
  const done = connector.run({
    async publish(b: SourceBatch) {
      await publisher.publish(b);
      const now = Date.now();
      for (const r of b.records) {
        if (r.type !== 'change') continue;
        stats.events++;
        // the marker row written after a saturate run (pgbench_history.tid = -1)
        if (r.event.source.table === 'pgbench_history' && String(r.event.after?.tid) === '-1') stats.markerAckedAt = performance.now();
        if (stats.record) {
          const commit = r.event.source.ts_us! / 1000;
          stats.latencies.push(now - commit);
          stats.toConnector.push(r.event.ts_ms - commit);
          stats.inPipeline.push(now - r.event.ts_ms);
        }
      }
    },
    loadCheckpoint: async () => null,
    log: createLogger('warn'),
    signal: ac.signal,
  });
  done.catch((err: unknown) => console.error('connector failed:', (err as Error).message));
  return {
    stats,
    async stop() {
      ac.abort();
      await done.catch(() => undefined);
      await connector.close();
      await publisher.close();
    },
  };
}

interface Result {
  at: string;
  machine: { cores: number; cpu: string; loadStart: number[]; loadEnd?: number[] };
  scale: number;
  drain?: {
    transactions: number;
    changes: number;
    backlogMb: number;
    generateTps: number;
    /** cpuUsPerEvent: CPU time of this process (connector + publisher + kafkajs) per event, which machine load does not skew. */
    ours: { seconds: number; eventsPerS: number; cpuUsPerEvent: number };
    native: { seconds: number; changesPerS: number };
  };
  saturate?: { seconds: number; sourceTps: number; changesPerS: number; lagMbAtEnd: number; catchUpS: number; behindAtEnd: number; events: number };
  latency?: {
    targetChangesPerS: number;
    achievedChangesPerS: number;
    events: number;
    p50Ms: number;
    p90Ms: number;
    p99Ms: number;
    maxMs: number;
    /** The same split in two: commit -> event built by the connector, event built -> Kafka ack. */
    toConnector: { p50Ms: number; p99Ms: number };
    inPipeline: { p50Ms: number; p99Ms: number };
  };
}

async function main(): Promise<void> {
  const result: Result = { at: new Date().toISOString(), machine: { cores: cpus().length, cpu: cpus()[0]?.model ?? '?', loadStart: loadavg() }, scale };
  const ourSlot = `bench_ours_${tag}`;
  const nativeSlot = `bench_native_${tag}`;
  const replicaDb = `bench_pgsrc_rep_${tag}`;
  console.log(`setting up ${db} (pgbench scale ${scale}) ...`);
  await q(url(SRC, 'postgres'), `create database ${db}`);
  await q(url(REP, 'postgres'), `create database ${replicaDb}`);
  try {
    await sh(PGBENCH, pgbenchArgs(['-i', '-q', '-s', String(scale)]));
    await q(url(SRC, db), 'alter table pgbench_history replica identity full');
    // Replica: same tables, no rows, for the native subscription.
    await sh(PGBENCH, ['-h', REP.host, '-p', String(REP.port), '-U', 'postgres', '-i', '-I', 'dtp', '-s', String(scale), replicaDb]);

    // ---- drain a backlog ----
    // Both slots exist before the backlog is written; nothing reads them meanwhile.
    const ours = await startOurs(ourSlot); // creates our slot and publication
    await sleep(1000);
    await ours.stop();
    if (phases.has('drain')) {
      await q(url(SRC, db), `create publication ${nativeSlot} for table ${TABLES.join(', ')}`);
      await q(url(SRC, db), `select pg_create_logical_replication_slot($1, 'pgoutput')`, [nativeSlot]);
      await q(
        url(REP, replicaDb),
        `create subscription ${nativeSlot} connection 'host=${SRC.host} port=${SRC.port} dbname=${db} user=postgres' publication ${nativeSlot}
           with (create_slot = false, slot_name = '${nativeSlot}', copy_data = false, enabled = false)`,
      );
      const lsn0 = await currentLsn();
      console.log(`writing a backlog of ${backlogTx} pgbench transactions ...`);
      const genOut = await sh(PGBENCH, pgbenchArgs(['-n', '-c', '4', '-j', '2', '-t', String(Math.ceil(backlogTx / 4))]));
      const lsn1 = await currentLsn();
      const changes = Number((await q(url(SRC, db), 'select count(*)::int8 as n from pgbench_history'))[0]!.n) * 4;

      console.log('draining with our connector ...');
      const cpu0 = process.cpuUsage();
      const drainOurs = await startOurs(ourSlot);
      const oursS = await waitConfirmed(ourSlot, lsn1);
      const oursEvents = drainOurs.stats.events;
      const cpu = process.cpuUsage(cpu0);
      const cpuUsPerEvent = (cpu.user + cpu.system) / oursEvents;
      await drainOurs.stop();
      console.log(`  ${oursEvents} events in ${oursS.toFixed(1)} s`);

      console.log('draining with native logical replication ...');
      const t0 = performance.now();
      await q(url(REP, replicaDb), `alter subscription ${nativeSlot} enable`);
      await waitConfirmed(nativeSlot, lsn1);
      const nativeS = (performance.now() - t0) / 1000;
      console.log(`  ${changes} changes in ${nativeS.toFixed(1)} s`);
      await q(url(REP, replicaDb), `alter subscription ${nativeSlot} disable`);
      await q(url(REP, replicaDb), `alter subscription ${nativeSlot} set (slot_name = none)`);
      await q(url(REP, replicaDb), `drop subscription ${nativeSlot}`);
      await q(url(SRC, db), 'select pg_drop_replication_slot($1)', [nativeSlot]);
      result.drain = {
        transactions: changes / 4,
        changes,
        backlogMb: Number(lsn1 - lsn0) / 1048576,
        generateTps: tpsOf(genOut),
        ours: { seconds: oursS, eventsPerS: oursEvents / oursS, cpuUsPerEvent },
        native: { seconds: nativeS, changesPerS: changes / nativeS },
      };
    }

    // ---- saturate: pgbench flat out while we stream ----
    if (phases.has('saturate')) {
      console.log(`pgbench flat out for ${seconds} s while streaming ...`);
      const sat = await startOurs(ourSlot);
      await sleep(1000);
      const e0 = sat.stats.events;
      const satOut = await sh(PGBENCH, pgbenchArgs(['-n', '-c', '4', '-j', '2', '-T', String(seconds)]));
      const endLsn = await currentLsn();
      // How far behind were we? A marker committed right after pgbench: time until Kafka has it
      // (the slot's confirmed LSN moves only with status messages, every statusIntervalMs).
      const tEnd = performance.now();
      const eAtEnd = sat.stats.events;
      await q(url(SRC, db), `insert into pgbench_history (tid, bid, aid, delta, mtime) values (-1, 1, 1, 0, now())`);
      while (sat.stats.markerAckedAt === 0 && performance.now() - tEnd < 900_000) await sleep(5);
      const catchUp = (sat.stats.markerAckedAt - tEnd) / 1000;
      const behind = sat.stats.events - eAtEnd - 1;
      const lagAtEnd = Math.max(0, Number(endLsn - (await confirmed(ourSlot))));
      const satEvents = sat.stats.events - e0;
      await sat.stop();
      result.saturate = {
        seconds,
        sourceTps: tpsOf(satOut),
        changesPerS: tpsOf(satOut) * 4,
        lagMbAtEnd: lagAtEnd / 1048576,
        catchUpS: catchUp,
        behindAtEnd: behind,
        events: satEvents,
      };
    }

    // ---- latency at a steady rate ----
    if (phases.has('latency')) {
      console.log(`steady ${rate * 4} changes/s for ${seconds} s, measuring commit-to-Kafka latency ...`);
      const lat = await startOurs(ourSlot);
      await sleep(1000);
      lat.stats.record = true;
      const latOut = await sh(PGBENCH, pgbenchArgs(['-n', '-c', '4', '-j', '2', '-R', String(rate), '-T', String(seconds)]));
      await waitConfirmed(ourSlot, await currentLsn());
      await lat.stop();
      const ls = lat.stats.latencies.sort((a, b) => a - b);
      const tc = lat.stats.toConnector.sort((a, b) => a - b);
      const ip = lat.stats.inPipeline.sort((a, b) => a - b);
      result.latency = {
        targetChangesPerS: rate * 4,
        achievedChangesPerS: tpsOf(latOut) * 4,
        events: ls.length,
        p50Ms: percentile(ls, 50),
        p90Ms: percentile(ls, 90),
        p99Ms: percentile(ls, 99),
        maxMs: ls.at(-1) ?? Number.NaN,
        toConnector: { p50Ms: percentile(tc, 50), p99Ms: percentile(tc, 99) },
        inPipeline: { p50Ms: percentile(ip, 50), p99Ms: percentile(ip, 99) },
      };
    }
  } finally {
    for (const s of [ourSlot, nativeSlot]) await q(url(SRC, 'postgres'), 'select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1 and not active', [s]).catch(() => undefined);
    await q(url(REP, 'postgres'), `drop database if exists ${replicaDb} with (force)`).catch(() => undefined);
    await q(url(SRC, 'postgres'), `drop database if exists ${db} with (force)`).catch(() => undefined);
    const admin = createKafka({ brokers: KAFKA.split(','), clientId: 'bench' }).admin();
    await admin.connect();
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(`bench-${tag}.`));
    if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => undefined);
    await admin.disconnect();
  }
  result.machine.loadEnd = loadavg();
  await report(result);
}

async function report(r: Result): Promise<void> {
  const dir = join(import.meta.dirname, 'results');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'postgres-source.json'), `${JSON.stringify(r, null, 2)}\n`);
  const f = (n: number | undefined, d = 0) => (n === undefined || Number.isNaN(n) ? '-' : n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));
  const d = r.drain;
  const s = r.saturate;
  const l = r.latency;
  const md = `# PostgreSQL source speed (pgbench TPC-B-like, scale ${r.scale})

${r.at}, ${r.machine.cores} cores (${r.machine.cpu}), load average ${f(r.machine.loadStart[0], 2)} at start, ${f(r.machine.loadEnd?.[0], 2)} at end. Source, replica, Kafka and the connector share this machine; other engineers' tests run on it too, so the numbers are noisy: compare within one run.

## Draining a backlog (${f(d?.transactions)} transactions = ${f(d?.changes)} row changes, ${f(d?.backlogMb, 1)} MB of WAL)

| consumer | seconds | changes/s |
|---|---|---|
| cdc connector (WAL -> Kafka, acks=all, JSON, schemas by reference) | ${f(d?.ours.seconds, 1)} | ${f(d?.ours.eventsPerS)} |
| PostgreSQL logical replication (subscription on the replica cluster) | ${f(d?.native.seconds, 1)} | ${f(d?.native.changesPerS)} |

Our process used ${f(d?.ours.cpuUsPerEvent, 1)} µs of CPU per event (connector, JSON codec, publisher, kafkajs), that is ${f(1e6 / (d?.ours.cpuUsPerEvent ?? Number.NaN))} events per CPU-second: the rate on a core of its own, whatever else the machine was doing.

The backlog was written at ${f(d?.generateTps)} tps (${f((d?.generateTps ?? 0) * 4)} changes/s) by pgbench (4 clients) with no consumer attached.

## Keeping up with pgbench flat out (${s?.seconds} s)

Source: ${f(s?.sourceTps)} tps = ${f(s?.changesPerS)} changes/s while the connector streamed (${f(s?.events)} events). When pgbench stopped, ${f(s?.behindAtEnd)} events were not yet in Kafka; a marker row committed then was in Kafka ${f(s?.catchUpS, 3)} s later (the slot's confirmed LSN, which moves with status messages every 10 s, was ${f(s?.lagMbAtEnd, 2)} MB behind).

## Commit-to-Kafka latency at a steady rate

Target ${f(l?.targetChangesPerS)} changes/s (pgbench -R ${f((l?.targetChangesPerS ?? 0) / 4)}), achieved ${f(l?.achievedChangesPerS)} changes/s, ${f(l?.events)} events measured: from the source commit timestamp in each event to Kafka's acknowledgement of its batch.

| p50 | p90 | p99 | max |
|---|---|---|---|
| ${f(l?.p50Ms, 1)} ms | ${f(l?.p90Ms, 1)} ms | ${f(l?.p99Ms, 1)} ms | ${f(l?.maxMs, 1)} ms |

Split: commit -> event built by the connector (walsender decoding and sending, our decoding) p50 ${f(l?.toConnector.p50Ms, 1)} ms, p99 ${f(l?.toConnector.p99Ms, 1)} ms; event built -> Kafka ack (batching, JSON encoding, the publish round trip) p50 ${f(l?.inPipeline.p50Ms, 1)} ms, p99 ${f(l?.inPipeline.p99Ms, 1)} ms.
`;
  await writeFile(join(dir, 'postgres-source.md'), md);
  console.log(md);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
