import { randomBytes } from 'node:crypto';
import type { Job } from 'bullmq';
import type { PipelineConfig } from '../../config/schema.js';
import { urlKind } from '../../config/schema.js';
import { type Chunk, type SnapshotReader, chunkId } from '../../connectors/snapshot.js';
import type { Row, TableId, TableSchema } from '../../schemas/index.js';
import type { Logger } from '../../util/log.js';
import { type ComparePlan, comparePlan, diffRows, rowsDigest } from './compare.js';
import { RunStore } from './progress.js';
import { createQueue, createQueueEvents, createWorker, jobOptions, redisConnection } from './queues.js';
import { findSink, findSource, internalTables, openReader, replicaTable, tableKey } from './readers.js';

/**
 * `cdc verify`: compares a source with a sink's replica table by table, chunk by chunk (key
 * ranges planned on the source and applied to both sides, so a row on the wrong side of a
 * boundary is still caught by the chunk that owns its key). Each chunk is a bullmq job: both
 * sides are read as canonical values, digested order-independently, and only when the digests
 * differ are the rows compared key by key to name what differs.
 */

export interface VerifyJobData {
  runId: string;
  source: string;
  sink: string;
  table: string;
  src: TableId;
  dst: TableId;
  chunk: Chunk;
}

export interface ChunkResult {
  table: string;
  chunk: number;
  sourceRows: number;
  replicaRows: number;
  equal: boolean;
  changed: { key: Row; columns: string[] }[];
  missing: Row[];
  extra: Row[];
}

export interface TableReport {
  table: string;
  replicaTable: string;
  sourceRows: number;
  replicaRows: number;
  chunks: number;
  differingChunks: number;
  changed: { key: Row; columns: string[] }[];
  missing: Row[];
  extra: Row[];
  /** Counts before truncation to `maxReportedKeys`. */
  changedCount: number;
  missingCount: number;
  extraCount: number;
  /** Problems that are not row differences: a missing replica table, missing columns. */
  problems: string[];
}

export interface VerifyReport {
  runId: string;
  source: string;
  sink: string;
  tables: TableReport[];
  equal: boolean;
  elapsedMs: number;
}

/** Readers cached per worker process: connections and catalog reads are reused across chunks. */
class ReaderCache {
  private readonly readers = new Map<string, Promise<SnapshotReader>>();
  get(url: string, byteOrder: boolean): Promise<SnapshotReader> {
    const k = `${byteOrder}|${url}`;
    let r = this.readers.get(k);
    if (!r) {
      r = openReader(url, { byteOrder, applicationName: 'cdc-verify' });
      r.catch(() => this.readers.delete(k));
      this.readers.set(k, r);
    }
    return r;
  }
  async close(): Promise<void> {
    const all = [...this.readers.values()];
    this.readers.clear();
    await Promise.allSettled(all.map(async (p) => (await p).close()));
  }
}

/** Reads one chunk on both sides and compares it. */
async function compareChunk(srcReader: SnapshotReader, dstReader: SnapshotReader, src: TableSchema, dst: TableSchema, plan: ComparePlan, chunk: Chunk, table: string): Promise<ChunkResult> {
  // The replica table has the replica's column types but must be bounded by the source's key values.
  const dstChunkSchema: TableSchema = { ...dst, primaryKey: src.primaryKey };
  const [s, d] = await Promise.all([
    (async () => {
      const sess = await srcReader.session(null);
      try {
        return await sess.readChunk(src, chunk);
      } finally {
        await sess.close();
      }
    })(),
    (async () => {
      const sess = await dstReader.session(null);
      try {
        return await sess.readChunk(dstChunkSchema, chunk);
      } finally {
        await sess.close();
      }
    })(),
  ]);
  const equal = rowsDigest(plan, s) === rowsDigest(plan, d);
  const diff = equal ? { changed: [], missing: [], extra: [] } : diffRows(plan, s, d);
  return { table, chunk: chunk.index, sourceRows: s.length, replicaRows: d.length, equal, ...diff };
}

export function verifyProcessor(cfg: PipelineConfig, cache = new ReaderCache()) {
  const store = new RunStore(redisConnection(cfg.redis.url), cfg.name);
  const processor = async (job: Job<VerifyJobData, ChunkResult>): Promise<ChunkResult> => {
    const d = job.data;
    const source = findSource(cfg, d.source);
    const sink = findSink(cfg, source, d.sink);
    const byteOrder = urlKind(source.url) !== urlKind(sink.url);
    const [sr, dr] = await Promise.all([cache.get(source.url, byteOrder), cache.get(sink.url, byteOrder)]);
    const [src, dst] = await Promise.all([sr.describe(d.src), dr.describe(d.dst)]);
    await store.chunkStarted(d.runId, d.table);
    const result = await compareChunk(sr, dr, src, dst, comparePlan(src, dst), d.chunk, d.table);
    await store.chunkDone(d.runId, d.table, chunkId(d.src, d.chunk.index), result.sourceRows);
    return result;
  };
  return { processor, close: async () => cache.close() };
}

export interface VerifyOptions {
  source?: string;
  sink?: string;
  /** Only these tables (source names, `schema.table` / `db.table`). */
  tables?: TableId[];
  /** Run chunk jobs in this process too (the default; external `cdc worker`s may help). */
  inProcessWorker?: boolean;
  log?: Logger;
  onProgress?: (store: RunStore, runId: string) => void;
}

function newRunId(kind: string): string {
  return `${kind}-${new Date().toISOString().replace(/[-:.TZ]/g, '').slice(0, 14)}-${randomBytes(3).toString('hex')}`;
}

/** Plans, runs and reports one verification. Returns the report; `equal` false on any difference. */
export async function runVerify(cfg: PipelineConfig, o: VerifyOptions = {}): Promise<VerifyReport> {
  const t0 = Date.now();
  const source = findSource(cfg, o.source);
  const sink = findSink(cfg, source, o.sink);
  const byteOrder = urlKind(source.url) !== urlKind(sink.url);
  const redis = redisConnection(cfg.redis.url);
  const store = new RunStore(redis, cfg.name);
  const runId = newRunId('verify');
  const jc = { pipeline: cfg.name, redisUrl: cfg.redis.url };
  const queue = createQueue<VerifyJobData, ChunkResult>(jc, 'verify', redis);
  const events = createQueueEvents(jc, 'verify');
  // One completion listener per chunk job: many tables mean many listeners, by design.
  events.setMaxListeners(0);
  queue.setMaxListeners(0);
  const srcReader = await openReader(source.url, { include: source.tables.include, exclude: [...source.tables.exclude, ...internalTables(source)], byteOrder, applicationName: 'cdc-verify' });
  const dstReader = await openReader(sink.url, { byteOrder, applicationName: 'cdc-verify' });
  const worker = o.inProcessWorker === false ? null : verifyProcessor(cfg);
  const w = worker ? createWorker<VerifyJobData, ChunkResult>(jc, 'verify', worker.processor, cfg.verify.concurrency) : null;
  try {
    await store.create({ id: runId, kind: 'verify', source: source.name, sink: sink.name, startedAt: t0, note: '' });
    const tables = o.tables ?? (await srcReader.listTables());
    const replicaDb = pgDb(sink.url);
    const reports: TableReport[] = [];
    const jobs: { report: TableReport; job: Promise<ChunkResult> }[] = [];
    await events.waitUntilReady();
    for (const id of tables) {
      const table = tableKey(id);
      const src = await srcReader.describe(id);
      const dstId = replicaTable(src.id, sink, replicaDb);
      const report: TableReport = {
        table,
        replicaTable: tableKey(dstId),
        sourceRows: 0,
        replicaRows: 0,
        chunks: 0,
        differingChunks: 0,
        changed: [],
        missing: [],
        extra: [],
        changedCount: 0,
        missingCount: 0,
        extraCount: 0,
        problems: [],
      };
      reports.push(report);
      let dst: TableSchema;
      try {
        dst = await dstReader.describe(dstId);
      } catch (err) {
        report.problems.push(`replica table ${tableKey(dstId)}: ${(err as Error).message}`);
        continue;
      }
      const plan = comparePlan(src, dst);
      if (plan.missingColumns.length > 0) report.problems.push(`replica lacks column(s) ${plan.missingColumns.join(', ')}`);
      if (src.primaryKey.length === 0) report.problems.push('table has no key: compared as one chunk, rows matched by their whole content');
      const chunks =
        src.primaryKey.length === 0
          ? [{ index: 0, lo: null, hi: null, estRows: await srcReader.estimateRows(src.id) }]
          : await srcReader.planChunks(src, cfg.verify.chunkRows);
      report.chunks = chunks.length;
      await store.addTable(runId, table, chunks.length, chunks.reduce((a, c) => a + c.estRows, 0));
      const added = await queue.addBulk(
        chunks.map((chunk) => ({
          name: 'verify-chunk',
          data: { runId, source: source.name, sink: sink.name, table, src: src.id, dst: dstId, chunk },
          opts: { ...jobOptions(3, 500), jobId: `${runId}.${reports.length - 1}.${chunk.index}` },
        })),
      );
      for (const j of added) jobs.push({ report, job: j.waitUntilFinished(events) as Promise<ChunkResult> });
    }
    await store.setStatus(runId, 'running');
    o.onProgress?.(store, runId);
    const max = cfg.verify.maxReportedKeys;
    const settled = await Promise.allSettled(jobs.map((j) => j.job));
    settled.forEach((s, i) => {
      const report = jobs[i]!.report;
      if (s.status === 'rejected') {
        report.problems.push(`chunk failed: ${(s.reason as Error).message}`);
        return;
      }
      const r = s.value;
      report.sourceRows += r.sourceRows;
      report.replicaRows += r.replicaRows;
      if (!r.equal) report.differingChunks++;
      report.changedCount += r.changed.length;
      report.missingCount += r.missing.length;
      report.extraCount += r.extra.length;
      report.changed.push(...r.changed.slice(0, Math.max(0, max - report.changed.length)));
      report.missing.push(...r.missing.slice(0, Math.max(0, max - report.missing.length)));
      report.extra.push(...r.extra.slice(0, Math.max(0, max - report.extra.length)));
    });
    const equal = reports.every((r) => r.problems.filter((p) => !p.startsWith('table has no key')).length === 0 && r.changedCount + r.missingCount + r.extraCount === 0);
    await store.setStatus(runId, 'done', equal ? 'equal' : 'differences');
    return { runId, source: source.name, sink: sink.name, tables: reports, equal, elapsedMs: Date.now() - t0 };
  } catch (err) {
    await store.setStatus(runId, 'failed', (err as Error).message).catch(() => undefined);
    throw err;
  } finally {
    await w?.close();
    await worker?.close();
    await Promise.allSettled([srcReader.close(), dstReader.close(), events.close(), queue.close()]);
    redis.disconnect();
  }
}

function pgDb(url: string): string {
  if (urlKind(url) !== 'postgres') return '';
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, '')) || 'postgres';
}

/** The report as text: one block per table, differing keys named. */
export function formatVerifyReport(r: VerifyReport): string {
  const lines: string[] = [`verify ${r.source} -> ${r.sink} (run ${r.runId}, ${(r.elapsedMs / 1000).toFixed(1)} s)`];
  const key = (k: Row) => JSON.stringify(k);
  for (const t of r.tables) {
    const diff = t.changedCount + t.missingCount + t.extraCount;
    const status = t.problems.some((p) => !p.startsWith('table has no key')) || diff > 0 ? 'DIFFERENT' : 'equal';
    lines.push(`${status.padEnd(9)} ${t.table} -> ${t.replicaTable}: source ${t.sourceRows} rows, replica ${t.replicaRows} rows, ${t.chunks} chunks (${t.differingChunks} differ)`);
    for (const p of t.problems) lines.push(`  problem: ${p}`);
    for (const c of t.changed) lines.push(`  changed ${key(c.key)}: ${c.columns.join(', ')}`);
    if (t.changedCount > t.changed.length) lines.push(`  ... and ${t.changedCount - t.changed.length} more changed`);
    for (const k of t.missing) lines.push(`  missing ${key(k)} (in source, not in replica)`);
    if (t.missingCount > t.missing.length) lines.push(`  ... and ${t.missingCount - t.missing.length} more missing`);
    for (const k of t.extra) lines.push(`  extra   ${key(k)} (in replica, not in source)`);
    if (t.extraCount > t.extra.length) lines.push(`  ... and ${t.extraCount - t.extra.length} more extra`);
  }
  lines.push(r.equal ? 'result: equal' : 'result: DIFFERENT');
  return `${lines.join('\n')}\n`;
}
