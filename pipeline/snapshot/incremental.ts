import { createHash, randomBytes } from 'node:crypto';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type mysql from 'mysql2/promise';
import type pg from 'pg';
import type { PipelineConfig, SourceConfig } from '../../config/schema.js';
import { urlKind } from '../../config/schema.js';
import { openMysql, quoteId } from '../../connectors/mysql/snapshot.js';
import { openSql, qualified, splitQualified } from '../../connectors/postgres/catalog.js';
import { type Chunk, type SnapshotReader, chunkId } from '../../connectors/snapshot.js';
import type { SourceBatch } from '../../connectors/source.js';

export { sliceRecords };
import type { Row, TableId, TableSchema } from '../../schemas/index.js';
import { CdcError } from '../../schemas/errors.js';
import { logger } from '../../util/log.js';
import { sleep } from '../../util/retry.js';
import { comparePlan, keyText } from '../jobs/compare.js';
import { RunStore } from '../jobs/progress.js';
import { createQueue, createWorker, jobOptions, keyPrefix, redisConnection } from '../jobs/queues.js';
import { findSource, openReader, replicaTable, tableKey } from '../jobs/readers.js';
import { sliceRecords } from './slice.js';
import { SIGNAL, WindowProcessor, type WindowPayload, type WindowStore, windowTable } from './window.js';

/**
 * Incremental snapshots (`cdc snapshot TABLE`): a table re-read in key-range windows while the
 * stream keeps running (window.ts explains the watermark method). Each window is a bullmq job:
 * LOW watermark, chunk read (plus the replica's keys in that range), HIGH watermark, then wait
 * until the source runner has put the window's rows into Kafka. A window whose LOW watermark the
 * runner did not see (it restarted inside the window) is abandoned and retried as a new window.
 */

export interface SignalTable {
  db: string;
  schema: string | null;
  table: string;
}

/** The source's configured signal table, or null when incremental snapshots are off for it. */
export function signalTableOf(source: SourceConfig): SignalTable | null {
  const db = decodeURIComponent(new URL(source.url.replace(/^mariadb:/i, 'mysql:')).pathname.replace(/^\//, ''));
  if (urlKind(source.url) === 'postgres') {
    const t = source.postgres?.signalTable;
    if (!t) return null;
    const q = splitQualified(t);
    return { db: db || 'postgres', schema: q.schema, table: q.table };
  }
  const t = source.mysql?.signalTable;
  if (!t) return null;
  const dot = t.indexOf('.');
  return { db: t.slice(0, dot), schema: null, table: t.slice(dot + 1) };
}

function windowKey(pipeline: string, window: string): string {
  return `${keyPrefix(pipeline)}:win:${window}`;
}

/** Window payloads and states in Redis (a day's TTL: a window never needs longer). */
export class RedisWindowStore implements WindowStore {
  constructor(
    private readonly redis: Redis,
    private readonly pipeline: string,
  ) {}
  async save(p: WindowPayload): Promise<void> {
    await this.redis.multi().hset(windowKey(this.pipeline, p.window), { payload: JSON.stringify(p), state: 'open' }).expire(windowKey(this.pipeline, p.window), 86_400).exec();
  }
  async load(window: string): Promise<WindowPayload | null> {
    const v = await this.redis.hget(windowKey(this.pipeline, window), 'payload');
    return v ? (JSON.parse(v) as WindowPayload) : null;
  }
  async emitted(window: string, rows: number, deletes: number): Promise<void> {
    await this.redis.hset(windowKey(this.pipeline, window), { state: 'emitted', rows: String(rows), deletes: String(deletes) });
  }
  async abandoned(window: string, reason: string): Promise<void> {
    await this.redis.hset(windowKey(this.pipeline, window), { state: 'abandoned', reason });
  }
  async state(window: string): Promise<{ state: string; rows: number; deletes: number; reason: string }> {
    const h = await this.redis.hgetall(windowKey(this.pipeline, window));
    return { state: h.state ?? 'missing', rows: Number(h.rows ?? 0), deletes: Number(h.deletes ?? 0), reason: h.reason ?? '' };
  }
  async drop(window: string): Promise<void> {
    await this.redis.del(windowKey(this.pipeline, window));
  }
}

/**
 * The processor the source runner puts in front of its publisher, or null when the source has
 * no signal table. `publish` rewrites each batch, publishes it, then confirms its windows.
 */
export function createWindowHook(cfg: PipelineConfig, source: SourceConfig): { publish(batch: SourceBatch, next: (b: SourceBatch) => Promise<void>): Promise<void>; close(): Promise<void> } | null {
  const signal = signalTableOf(source);
  if (!signal) return null;
  const redis = redisConnection(cfg.redis.url);
  const store = new RedisWindowStore(redis, cfg.name);
  const processor = new WindowProcessor({ sourceName: source.name, signal: { db: signal.db, schema: signal.schema, table: signal.table }, store, origin: source.origin ?? source.name });
  return {
    async publish(batch, next) {
      const { batch: out, closed } = await processor.process(batch);
      if (closed.length === 0) await next(out);
      else {
        // A window adds up to a chunk of rows: publish in slices Kafka accepts (max.message.bytes
        // is per partition batch, 1 MiB by default), the checkpoint only with the last slice.
        const slices = sliceRecords(out.records, 512 * 1024, 2000);
        for (const [i, records] of slices.entries()) await next({ records, checkpoint: i === slices.length - 1 ? out.checkpoint : null });
      }
      for (const c of closed) await store.emitted(c.window, c.rows, c.deletes);
    },
    async close() {
      redis.disconnect();
    },
  };
}

/** Writes watermark rows into the source's signal table (created when missing). */
interface SignalWriter {
  write(id: string, type: string, data: Record<string, unknown>): Promise<void>;
  remove(ids: string[]): Promise<void>;
  close(): Promise<void>;
}

async function signalWriter(source: SourceConfig, t: SignalTable): Promise<SignalWriter> {
  if (urlKind(source.url) === 'postgres') {
    const c: pg.Client = await openSql(source.url, 'cdc-snapshot-signal');
    const name = qualified(t.schema ?? 'public', t.table);
    await c.query(`create table if not exists ${name} (id varchar(64) primary key, type varchar(32) not null, data text)`);
    return {
      async write(id, type, data) {
        await c.query(`insert into ${name} (id, type, data) values ($1, $2, $3)`, [id, type, JSON.stringify(data)]);
      },
      async remove(ids) {
        await c.query(`delete from ${name} where id = any($1::text[])`, [ids]);
      },
      close: async () => c.end().catch(() => undefined),
    };
  }
  const c: mysql.Connection = await openMysql(source.url);
  const name = `${quoteId(t.db)}.${quoteId(t.table)}`;
  await c.query(`create table if not exists ${name} (id varchar(64) primary key, type varchar(32) not null, data text)`);
  return {
    async write(id, type, data) {
      await c.query(`insert into ${name} (id, type, data) values (?, ?, ?)`, [id, type, JSON.stringify(data)]);
    },
    async remove(ids) {
      if (ids.length > 0) await c.query(`delete from ${name} where id in (?)`, [ids]);
    },
    close: async () => c.end().catch(() => undefined),
  };
}

export interface WindowJobData {
  runId: string;
  source: string;
  table: string;
  src: TableId;
  chunk: Chunk;
  /** Also emit deletes for replica keys the source lacks (repairs extra rows). */
  deleteExtra: boolean;
  /** An interrupted initial run this window finishes a chunk of (same chunk index). */
  parentRun?: string;
}

function hash8(s: string): string {
  return createHash('sha1').update(s).digest('hex').slice(0, 8);
}

/** Replica keys in a chunk's range that the source rows lack, in the source's key types. */
async function extraKeys(cfg: PipelineConfig, source: SourceConfig, readers: (url: string) => Promise<SnapshotReader>, schema: TableSchema, chunk: Chunk, rows: Row[]): Promise<Row[]> {
  const out = new Map<string, Row>();
  const sinks = cfg.sinks.filter((k) => k.sources === undefined || k.sources.includes(source.name));
  for (const sink of sinks) {
    // Key ranges order text the same way only within one dialect.
    const textKey = schema.primaryKey.some((k) => ['string', 'enum', 'uuid', 'bytes'].includes(schema.columns.find((c) => c.name === k)?.type.kind ?? ''));
    if (textKey && urlKind(sink.url) !== urlKind(source.url)) continue;
    const r = await readers(sink.url);
    const replicaDb = urlKind(sink.url) === 'postgres' ? decodeURIComponent(new URL(sink.url).pathname.replace(/^\//, '')) || 'postgres' : '';
    const dstId = replicaTable(schema.id, sink, replicaDb);
    let dst: TableSchema;
    try {
      dst = await r.describe(dstId);
    } catch {
      continue; // no replica table yet: nothing extra in it
    }
    const keySchema: TableSchema = { ...dst, columns: schema.primaryKey.map((k) => dst.columns.find((c) => c.name === k)).filter((c) => c !== undefined), primaryKey: schema.primaryKey };
    if (keySchema.columns.length !== schema.primaryKey.length) continue;
    const s = await r.session(null);
    let keys: Row[];
    try {
      keys = await s.readChunk(keySchema, chunk);
    } finally {
      await s.close();
    }
    const plan = comparePlan({ ...schema, columns: schema.columns.filter((c) => schema.primaryKey.includes(c.name)) }, keySchema);
    const have = new Set(rows.map((row) => keyText(plan, row)));
    for (const k of keys) {
      const t = keyText(plan, k);
      if (have.has(t) || out.has(t)) continue;
      // In the source's canonical key types (a 64-bit key is a string there).
      const key: Row = {};
      for (const col of schema.primaryKey) {
        const c = schema.columns.find((x) => x.name === col)!;
        const v = k[col] ?? null;
        key[col] = typeof v === 'number' && !(c.type.kind === 'int' && c.type.bits <= 32) && c.type.kind !== 'year' && c.type.kind !== 'float' ? String(v) : v;
      }
      out.set(t, key);
    }
  }
  return [...out.values()];
}

export function windowProcessor(cfg: PipelineConfig, opts: { waitMs?: number } = {}) {
  const redis = redisConnection(cfg.redis.url);
  const store = new RunStore(redis, cfg.name);
  const windows = new RedisWindowStore(redis, cfg.name);
  const readers = new Map<string, Promise<SnapshotReader>>();
  const reader = (url: string) => {
    let r = readers.get(url);
    if (!r) {
      r = openReader(url, { applicationName: 'cdc-incremental' });
      r.catch(() => readers.delete(url));
      readers.set(url, r);
    }
    return r;
  };
  const log = logger().child({ component: 'incremental-snapshot' });
  const processor = async (job: Job<WindowJobData, { rows: number }>): Promise<{ rows: number }> => {
    const d = job.data;
    const cid = chunkId(d.src, d.chunk.index);
    if (await store.isChunkDone(d.runId, cid)) return { rows: 0 };
    const source = findSource(cfg, d.source);
    const signal = signalTableOf(source);
    if (!signal) throw new CdcError(`source ${source.name} has no signal table (set sources[].postgres.signalTable / mysql.signalTable)`, { retriable: false, code: 'CONFIG' });
    const r = await reader(source.url);
    const schema = await r.describe(d.src);
    await store.chunkStarted(d.runId, d.table);
    const window = `${d.runId.slice(-12)}.${hash8(d.table)}.${d.chunk.index}.${randomBytes(3).toString('hex')}`;
    const writer = await signalWriter(source, signal);
    try {
      await writer.write(`${window}-o`, SIGNAL.open, { window, table: windowTable(schema.id) });
      const s = await r.session(null);
      let rows: Row[];
      try {
        rows = await s.readChunk(schema, d.chunk);
      } finally {
        await s.close();
      }
      const extra = d.deleteExtra ? await extraKeys(cfg, source, reader, schema, d.chunk, rows) : [];
      await windows.save({ window, schema, rows, extraKeys: extra });
      await writer.write(`${window}-c`, SIGNAL.close, { window });
      const deadline = Date.now() + (opts.waitMs ?? Number(process.env.CDC_WINDOW_WAIT_MS ?? 300_000));
      for (;;) {
        const st = await windows.state(window);
        if (st.state === 'emitted') {
          // The parent first: this run's done set decides whether a retry redoes the window, so
          // a kill between the two leaves a retry that records the chunk here (and finds the
          // parent's already counted), never a parent one chunk short.
          if (d.parentRun) await store.chunkDone(d.parentRun, d.table, cid, rows.length);
          await store.chunkDone(d.runId, d.table, cid, rows.length);
          await windows.drop(window);
          await writer.remove([`${window}-o`, `${window}-c`]).catch(() => undefined);
          log.debug({ table: d.table, chunk: d.chunk.index, rows: st.rows, deletes: st.deletes }, 'window emitted');
          return { rows: rows.length };
        }
        if (st.state === 'abandoned') throw new CdcError(`window ${window} abandoned: ${st.reason}`, { retriable: true, code: 'WINDOW_ABANDONED' });
        if (Date.now() > deadline) {
          throw new CdcError(`window ${window}: the source runner did not reach the high watermark (is \`cdc run\` running with ${source.name}'s signal table captured?)`, { retriable: true, code: 'WINDOW_TIMEOUT' });
        }
        await sleep(100);
      }
    } finally {
      await writer.close();
    }
  };
  return {
    processor,
    async close() {
      const all = [...readers.values()];
      readers.clear();
      await Promise.allSettled(all.map(async (p) => (await p).close()));
      redis.disconnect();
    },
  };
}

export function startIncrementalWorker(cfg: PipelineConfig, concurrency = cfg.snapshot.concurrency) {
  const p = windowProcessor(cfg);
  const w = createWorker<WindowJobData, { rows: number }>({ pipeline: cfg.name, redisUrl: cfg.redis.url }, 'incremental', p.processor, concurrency);
  return {
    worker: w,
    async close() {
      await w.close();
      await p.close();
    },
  };
}

export interface IncrementalOptions {
  source?: string;
  tables: TableId[];
  /** Emit deletes for replica rows the source does not have. @defaultValue true */
  deleteExtra?: boolean;
  inProcessWorker?: boolean;
  onPlanned?: (store: RunStore, runId: string) => void;
  signal?: AbortSignal;
  /** Key ranges to re-read per table (`tableKey`), instead of the whole table. */
  ranges?: Map<string, Chunk[]>;
  /** Mark each re-read range done in this (interrupted initial) run too. */
  parentRun?: string;
}

/** Plans and runs an incremental snapshot of some tables; resolves when every window is in Kafka. */
export async function runIncrementalSnapshot(cfg: PipelineConfig, o: IncrementalOptions): Promise<{ runId: string; rows: number; elapsedMs: number }> {
  const t0 = Date.now();
  const source = findSource(cfg, o.source);
  if (!signalTableOf(source)) throw new CdcError(`source ${source.name} has no signal table: set sources[].${urlKind(source.url) === 'postgres' ? 'postgres.signalTable' : 'mysql.signalTable'}`, { retriable: false, code: 'CONFIG' });
  const redis = redisConnection(cfg.redis.url);
  const store = new RunStore(redis, cfg.name);
  const queue = createQueue<WindowJobData, { rows: number }>({ pipeline: cfg.name, redisUrl: cfg.redis.url }, 'incremental', redis);
  const reader = await openReader(source.url, { applicationName: 'cdc-incremental' });
  const worker = o.inProcessWorker === false ? null : startIncrementalWorker(cfg);
  const runId = `incremental-${source.name}-${new Date().toISOString().replace(/[-:.TZ]/g, '').slice(0, 14)}-${randomBytes(3).toString('hex')}`;
  try {
    await store.create({ id: runId, kind: 'incremental', source: source.name, sink: null, startedAt: t0, note: o.tables.map(tableKey).join(',') });
    let total = 0;
    for (const id of o.tables) {
      const schema = await reader.describe(id);
      if (schema.primaryKey.length === 0) throw new CdcError(`${tableKey(id)} has no primary key: an incremental snapshot needs one`, { retriable: false, code: 'NO_KEY' });
      const table = tableKey(id);
      const chunks = o.ranges?.get(table) ?? (await reader.planChunks(schema, cfg.snapshot.incrementalChunkRows, { ctid: false }));
      await store.addTable(runId, table, chunks.length, chunks.reduce((a, c) => a + c.estRows, 0));
      total += chunks.length;
      await queue.addBulk(
        chunks.map((chunk) => ({
          name: 'snapshot-window',
          data: { runId, source: source.name, table, src: schema.id, chunk, deleteExtra: o.deleteExtra ?? true, ...(o.ranges?.has(table) && o.parentRun ? { parentRun: o.parentRun } : {}) },
          opts: { ...jobOptions(Math.max(cfg.snapshot.attempts, 5), cfg.snapshot.backoffMs), jobId: `${runId}.${hash8(table)}.${chunk.index}` },
        })),
      );
    }
    await store.setStatus(runId, 'running');
    o.onPlanned?.(store, runId);
    for (;;) {
      if (o.signal?.aborted) throw new CdcError('incremental snapshot aborted', { retriable: true, code: 'ABORTED' });
      const progress = await store.tables(runId);
      if (progress.reduce((a, t) => a + Math.min(t.chunksDone, t.chunks), 0) >= total) break;
      const failed = (await queue.getJobs(['failed'], 0, 1000)).filter((j) => j.data.runId === runId);
      if (failed.length > 0) throw new CdcError(`window ${failed[0]!.data.table}#${failed[0]!.data.chunk.index} failed: ${failed[0]!.failedReason}`, { retriable: false, code: 'SNAPSHOT_FAILED' });
      await sleep(200);
    }
    await store.setStatus(runId, 'done');
    const progress = await store.tables(runId);
    return { runId, rows: progress.reduce((a, t) => a + t.rowsDone, 0), elapsedMs: Date.now() - t0 };
  } catch (err) {
    await store.setStatus(runId, 'failed', (err as Error).message).catch(() => undefined);
    throw err;
  } finally {
    await worker?.close();
    await Promise.allSettled([reader.close(), queue.close()]);
    redis.disconnect();
  }
}
