import { createHash } from 'node:crypto';
import type { Job } from 'bullmq';
import type { Kafka } from 'kafkajs';
import type pg from 'pg';
import type { PipelineConfig, SinkConfig, SourceConfig } from '../../config/schema.js';
import { urlKind } from '../../config/schema.js';
import { openSql } from '../../connectors/postgres/catalog.js';
import { beginSnapshot } from '../../connectors/postgres/snapshot.js';
import { type Chunk, type ChunkSession, type SnapshotReader, chunkId } from '../../connectors/snapshot.js';
import type { Row, SourcePosition, TableId } from '../../schemas/index.js';
import { createCodec } from '../codec.js';
import { CdcError } from '../../schemas/errors.js';
import { encodePosition } from '../../schemas/position.js';
import type { EventCodec } from '../../schemas/codec/types.js';
import { logger } from '../../util/log.js';
import { sleep } from '../../util/retry.js';
import { RunStore } from '../jobs/progress.js';
import { type JobKind, createQueue, createWorker, jobOptions, redisConnection } from '../jobs/queues.js';
import { findSource, openReader, replicaTable, tableKey } from '../jobs/readers.js';
import { type Publisher, createPublisher } from '../publisher.js';
import { sourceTopics, tableTopicSpec } from '../topics.js';
import { snapshotEvent } from './events.js';
import { sliceRecords } from './slice.js';
import { type ReplicaWriter, replicaWriter } from './replica.js';

export { snapshotEvent };

/**
 * Snapshot runs: a table list split into chunks, one bullmq job per chunk, every chunk read
 * inside the same consistent view of the source (PostgreSQL: the snapshot exported when the slot
 * was created; see docs/snapshots.md for why that leaves no gap and no duplicate at the hand-off
 * to streaming). A chunk goes to Kafka as `op: r` events and/or straight into the replicas
 * (replica.ts). Finished chunks are recorded in Redis (and, for the bulk path, in the replica in
 * the same transaction as the rows), so a run restarted after kill -9 does only what is left.
 */

export type SnapshotTarget = 'kafka' | 'direct' | 'both';

export interface SnapshotJobData {
  runId: string;
  source: string;
  table: string;
  src: TableId;
  chunk: Chunk;
  /** PostgreSQL exported snapshot every chunk imports; null = each chunk reads its own view. */
  snapshotName: string | null;
  /** Stream position the snapshot corresponds to (the r events' position). */
  position: SourcePosition;
  target: SnapshotTarget;
  /** Sinks loaded directly (target direct/both). */
  sinks: string[];
}

export interface ChunkOutcome {
  rows: number;
  skipped: boolean;
}

/** How long a run stays "alive" without its coordinator refreshing it. */
export const LEASE_MS = Number(process.env.CDC_SNAPSHOT_LEASE_MS ?? 10_000);

function hash8(s: string): string {
  return createHash('sha1').update(s).digest('hex').slice(0, 8);
}

/** Deterministic run id: the same source position always means the same run (resume, not redo). */
export function snapshotRunId(source: string, position: SourcePosition): string {
  return `snapshot-${source}-${hash8(encodePosition(position))}`;
}

/** Sinks loaded directly: same dialect as the source (the bulk path copies source types verbatim). */
export function directSinks(cfg: PipelineConfig, source: SourceConfig): SinkConfig[] {
  return cfg.sinks.filter((k) => (k.sources === undefined || k.sources.includes(source.name)) && urlKind(k.url) === urlKind(source.url));
}

/** Per-worker-process resources, opened on first use and reused across chunks. */
class Resources {
  private readers = new Map<string, Promise<SnapshotReader>>();
  private writers = new Map<string, Promise<ReplicaWriter>>();
  private publishers = new Map<string, Promise<Publisher>>();
  private codecs: EventCodec[] = [];
  constructor(
    private readonly cfg: PipelineConfig,
    private readonly kafka: () => Kafka,
  ) {}
  reader(url: string): Promise<SnapshotReader> {
    let r = this.readers.get(url);
    if (!r) {
      r = openReader(url, { applicationName: 'cdc-snapshot' });
      r.catch(() => this.readers.delete(url));
      this.readers.set(url, r);
    }
    return r;
  }
  writer(url: string): Promise<ReplicaWriter> {
    let w = this.writers.get(url);
    if (!w) {
      w = replicaWriter(url);
      w.catch(() => this.writers.delete(url));
      this.writers.set(url, w);
    }
    return w;
  }
  publisher(source: SourceConfig): Promise<Publisher> {
    let p = this.publishers.get(source.name);
    if (!p) {
      const codec = createCodec(this.cfg, this.kafka());
      this.codecs.push(codec);
      p = createPublisher({
        kafka: this.kafka(),
        codec,
        topics: sourceTopics(this.cfg.kafka.topicPrefix ?? this.cfg.name, source.name),
        sourceName: source.name,
        topicSpec: tableTopicSpec(this.cfg.kafka),
        tombstones: this.cfg.kafka.tombstones,
      });
      p.catch(() => this.publishers.delete(source.name));
      this.publishers.set(source.name, p);
    }
    return p;
  }
  async close(): Promise<void> {
    const all = [...this.readers.values(), ...this.writers.values(), ...this.publishers.values()];
    this.readers.clear();
    this.writers.clear();
    this.publishers.clear();
    await Promise.allSettled(all.map(async (p) => (await p).close()));
    const codecs = this.codecs;
    this.codecs = [];
    await Promise.allSettled(codecs.map((c) => c.close?.()));
  }
}

async function replicaDb(url: string): Promise<string> {
  if (urlKind(url) !== 'postgres') return '';
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, '')) || 'postgres';
}

/** The chunk job: read the chunk in the run's snapshot, write it to every target, record it. */
export function snapshotProcessor(cfg: PipelineConfig, kafka: () => Kafka, pool?: SessionPool) {
  const res = new Resources(cfg, kafka);
  const store = new RunStore(redisConnection(cfg.redis.url), cfg.name);
  const log = logger().child({ component: 'snapshot-worker' });
  const processor = async (job: Job<SnapshotJobData, ChunkOutcome>): Promise<ChunkOutcome> => {
    const d = job.data;
    const cid = chunkId(d.src, d.chunk.index);
    if (await store.isChunkDone(d.runId, cid)) return { rows: 0, skipped: true };
    const source = findSource(cfg, d.source);
    const reader = await res.reader(source.url);
    const schema = await reader.describe(d.src);
    await store.chunkStarted(d.runId, d.table);
    let rows = 0;
    let skipped = true;
    // Rows read once per chunk and shared by the targets that need canonical values.
    let cached: Promise<Row[]> | null = null;
    const readRows = () => {
      cached ??= (async () => {
        if (pool) return pool.use((s) => s.readChunk(schema, d.chunk));
        const s = await reader.session(d.snapshotName);
        try {
          return await s.readChunk(schema, d.chunk);
        } finally {
          await s.close();
        }
      })();
      return cached;
    };

    if (d.target !== 'kafka') {
      for (const sinkName of d.sinks) {
        const sink = cfg.sinks.find((k) => k.name === sinkName);
        if (!sink) throw new CdcError(`no sink named ${sinkName}`, { retriable: false });
        const writer = await res.writer(sink.url);
        const dst = replicaTable(schema.id, sink, await replicaDb(sink.url));
        await writer.prepare(d.runId, schema, dst);
        let n: number | null;
        if (writer.dialect === 'postgres' && reader.dialect === 'postgres' && !pool) {
          // PostgreSQL to PostgreSQL: COPY out of the snapshot piped into COPY in; no row ever decoded.
          const c: pg.Client = await openSql(source.url, 'cdc-snapshot');
          try {
            await beginSnapshot(c, d.snapshotName);
            n = await writer.writeChunk(d.runId, cid, schema, dst, d.chunk, { kind: 'pg-copy', source: c });
            await c.query('commit').catch(() => undefined);
          } finally {
            await c.end().catch(() => undefined);
          }
        } else {
          n = await writer.writeChunk(d.runId, cid, schema, dst, d.chunk, { kind: 'rows', rows: readRows });
        }
        if (n !== null) {
          rows = n;
          skipped = false;
        }
      }
    }
    if (d.target !== 'direct') {
      const list = await readRows();
      const publisher = await res.publisher(source);
      const ts = Date.now();
      // Positions are deterministic per (chunk, row): a chunk republished after a crash carries
      // the same positions as its first copy, so consumers can drop the duplicates.
      const records = list.map((r, i) => ({
        type: 'change' as const,
        event: snapshotEvent(source.name, schema, r, d.position, d.chunk.index * 10_000_000 + i, { tsMs: ts, origin: source.origin ?? source.name }),
      }));
      // Few large requests (each under Kafka's 1 MiB per-partition batch limit): per-request
      // round trips, not encoding, bound this path.
      for (const slice of sliceRecords(records, 512 * 1024, 2000)) await publisher.publish({ records: slice, checkpoint: null });
      rows = list.length;
      skipped = false;
    }
    await store.chunkDone(d.runId, d.table, cid, rows);
    log.debug({ table: d.table, chunk: d.chunk.index, rows }, 'chunk done');
    return { rows, skipped };
  };
  return { processor, close: () => res.close() };
}

/**
 * Sessions that all read one consistent view (MySQL: opened at the same binlog position), lent
 * to one chunk at a time. Only the process that opened them can run the run's chunks.
 */
export class SessionPool {
  private readonly idle: ChunkSession[];
  private readonly waiting: ((s: ChunkSession) => void)[] = [];
  constructor(readonly sessions: ChunkSession[]) {
    this.idle = [...sessions];
  }
  async use<T>(fn: (s: ChunkSession) => Promise<T>): Promise<T> {
    const s = this.idle.pop() ?? (await new Promise<ChunkSession>((resolve) => this.waiting.push(resolve)));
    try {
      return await fn(s);
    } finally {
      const next = this.waiting.shift();
      if (next) next(s);
      else this.idle.push(s);
    }
  }
  async close(): Promise<void> {
    await Promise.allSettled(this.sessions.map((s) => s.close()));
  }
}

/** Starts chunk workers in this process until `close`. */
export function startSnapshotWorker(cfg: PipelineConfig, kafka: () => Kafka, concurrency = cfg.snapshot.concurrency, local?: { queue: JobKind; pool: SessionPool }) {
  const p = snapshotProcessor(cfg, kafka, local?.pool);
  const w = createWorker<SnapshotJobData, ChunkOutcome>({ pipeline: cfg.name, redisUrl: cfg.redis.url }, local?.queue ?? 'snapshot', p.processor, concurrency);
  return {
    worker: w,
    async close() {
      await w.close();
      await p.close();
    },
  };
}

export interface RunSnapshotOptions {
  source: string;
  snapshotName: string | null;
  position: SourcePosition;
  target?: SnapshotTarget;
  tables?: TableId[];
  runId?: string;
  /** Force CTID page ranges (true) or key ranges (false) for PostgreSQL tables. @defaultValue snapshot.chunking */
  ctid?: boolean;
  /** Run chunk jobs in this process too. @defaultValue true */
  inProcessWorker?: boolean;
  kafka?: () => Kafka;
  signal?: AbortSignal;
  /** Called once the run is planned (progress display). */
  onPlanned?: (store: RunStore, runId: string) => void;
  pollMs?: number;
  /** Consistent sessions held by this process (MySQL): chunks run only here, on these. */
  pool?: SessionPool;
}

export interface SnapshotResult {
  runId: string;
  tables: { table: string; rows: number; chunks: number }[];
  rows: number;
  elapsedMs: number;
}

/**
 * Plans (or re-plans, idempotently) a snapshot run, enqueues its chunk jobs and waits until every
 * chunk is done. Chunk job ids are deterministic, so calling this again for the same run after a
 * crash adds only the jobs that are gone, and the processor skips chunks already done.
 */
export async function runSnapshot(cfg: PipelineConfig, o: RunSnapshotOptions): Promise<SnapshotResult> {
  const t0 = Date.now();
  const source = findSource(cfg, o.source);
  const target = o.target ?? cfg.snapshot.target;
  const runId = o.runId ?? snapshotRunId(source.name, o.position);
  const redis = redisConnection(cfg.redis.url);
  const store = new RunStore(redis, cfg.name);
  const jc = { pipeline: cfg.name, redisUrl: cfg.redis.url };
  const queueName: JobKind = o.pool ? `snapshot-local-${hash8(runId)}` : 'snapshot';
  const queue = createQueue<SnapshotJobData, ChunkOutcome>(jc, queueName, redis);
  const reader = await openReader(source.url, { include: source.tables.include, exclude: source.tables.exclude, applicationName: 'cdc-snapshot' });
  const sinks = target === 'kafka' ? [] : directSinks(cfg, source);
  if (target !== 'kafka' && sinks.length === 0) throw new CdcError(`snapshot.target ${target}: no sink of the same dialect consumes source ${source.name}`, { retriable: false, code: 'CONFIG' });
  const kafka = o.kafka ?? (() => { throw new CdcError('snapshot to Kafka needs a Kafka client', { retriable: false }); });
  const worker = o.pool
    ? startSnapshotWorker(cfg, kafka, o.pool.sessions.length, { queue: queueName, pool: o.pool })
    : o.inProcessWorker === false
      ? null
      : startSnapshotWorker(cfg, kafka);
  const writers: ReplicaWriter[] = [];
  try {
    await store.lease(runId, LEASE_MS);
    const existing = await store.get(runId);
    if (existing?.status === 'done') return { runId, tables: [], rows: 0, elapsedMs: 0 };
    if (!existing) await store.create({ id: runId, kind: 'snapshot', source: source.name, sink: sinks.map((s) => s.name).join(',') || null, startedAt: t0, note: target });
    await store.setMeta(runId, 'position', encodePosition(o.position));
    // While this lease lives, no other process treats the run as interrupted.
    await store.lease(runId, LEASE_MS);
    let leased = Date.now();
    const tables = o.tables ?? (await reader.listTables());
    let total = 0;
    for (const w of sinks) writers.push(await replicaWriter(w.url));
    for (const id of tables) {
      const schema = await reader.describe(id);
      const table = tableKey(id);
      const chunking = o.ctid === undefined ? cfg.snapshot.chunking : o.ctid ? 'ctid' : 'key';
      const useCtid =
        reader.dialect === 'postgres' &&
        (schema.primaryKey.length === 0 || chunking === 'ctid' || (chunking === 'auto' && target === 'direct' && o.snapshotName !== null));
      const chunks = await reader.planChunks(schema, cfg.snapshot.chunkRows, { ctid: useCtid });
      for (const [i, w] of writers.entries()) {
        const dst = replicaTable(schema.id, sinks[i]!, await replicaDb(sinks[i]!.url));
        await w.prepare(runId, schema, dst);
        // CTID chunks cannot delete their own range in the replica: empty the table once per run.
        if (chunks.some((c) => c.ctid) || schema.primaryKey.length === 0) await w.truncateOnce(runId, dst);
      }
      await store.addTable(runId, table, chunks.length, chunks.reduce((a, c) => a + c.estRows, 0));
      await store.savePlan(runId, table, { id: schema.id, chunks });
      total += chunks.length;
      await queue.addBulk(
        chunks.map((chunk) => ({
          name: 'snapshot-chunk',
          data: { runId, source: source.name, table, src: schema.id, chunk, snapshotName: o.snapshotName, position: o.position, target, sinks: sinks.map((s) => s.name) },
          opts: { ...jobOptions(cfg.snapshot.attempts, cfg.snapshot.backoffMs), jobId: `${runId}.${hash8(table)}.${chunk.index}` },
        })),
      );
    }
    await store.setStatus(runId, 'running');
    o.onPlanned?.(store, runId);
    for (;;) {
      if (o.signal?.aborted) throw new CdcError('snapshot aborted', { retriable: true, code: 'ABORTED' });
      if (Date.now() - leased > LEASE_MS / 5) {
        await store.lease(runId, LEASE_MS);
        leased = Date.now();
      }
      const progress = await store.tables(runId);
      const done = progress.reduce((a, t) => a + Math.min(t.chunksDone, t.chunks), 0);
      if (done >= total) break;
      const failed = (await queue.getJobs(['failed'], 0, 1000)).filter((j) => j.data.runId === runId);
      if (failed.length > 0) {
        const f = failed[0]!;
        throw new CdcError(`snapshot chunk ${f.data.table}#${f.data.chunk.index} failed after ${f.attemptsMade} attempts: ${f.failedReason}`, { retriable: false, code: 'SNAPSHOT_FAILED' });
      }
      await sleep(o.pollMs ?? 250);
    }
    // Deferred primary keys of tables this run created, built once all their rows are in.
    for (const id of tables) {
      const schema = await reader.describe(id);
      for (const [i, w] of writers.entries()) await w.finalize(runId, schema, replicaTable(schema.id, sinks[i]!, await replicaDb(sinks[i]!.url)));
    }
    await store.setStatus(runId, 'done');
    const progress = await store.tables(runId);
    return {
      runId,
      tables: progress.map((t) => ({ table: t.table, rows: t.rowsDone, chunks: t.chunks })),
      rows: progress.reduce((a, t) => a + t.rowsDone, 0),
      elapsedMs: Date.now() - t0,
    };
  } catch (err) {
    if (!(err instanceof CdcError && err.code === 'ABORTED')) await store.setStatus(runId, 'failed', (err as Error).message).catch(() => undefined);
    throw err;
  } finally {
    await worker?.close();
    await Promise.allSettled([reader.close(), queue.close(), ...writers.map((w) => w.close())]);
    redis.disconnect();
  }
}
