import type { Kafka } from 'kafkajs';
import type { PipelineConfig, SourceConfig } from '../../config/schema.js';
import { urlKind } from '../../config/schema.js';
import { mysqlSnapshotReader } from '../../connectors/mysql/snapshot.js';
import type { Chunk, ChunkSession } from '../../connectors/snapshot.js';
import { chunkId } from '../../connectors/snapshot.js';
import { type MysqlPosition, type SourcePosition, decodePosition } from '../../schemas/position.js';
import type { TableId } from '../../schemas/table-schema.js';
import { CdcError } from '../../schemas/errors.js';
import type { Logger } from '../../util/log.js';
import { RunStore } from '../jobs/progress.js';
import { redisConnection } from '../jobs/queues.js';
import { sleep } from '../../util/retry.js';
import { openReader, replicaTable, tableKey } from '../jobs/readers.js';
import { SessionPool, directSinks, runSnapshot } from './engine.js';
import { runIncrementalSnapshot, signalTableOf } from './incremental.js';
import { replicaWriter } from './replica.js';

/**
 * The initial snapshot of a source, run from the connectors' start-up hooks (so streaming starts
 * exactly where the snapshot's consistent view ends), and its recovery when the process that held
 * that view died mid-way.
 *
 * PostgreSQL: `onSlotCreated` runs between CREATE_REPLICATION_SLOT (SNAPSHOT 'export') and
 * START_REPLICATION; every chunk imports the exported snapshot, the stream starts at the slot's
 * consistent point. MySQL/MariaDB: `onFirstStart` opens `concurrency` sessions with
 * START TRANSACTION WITH CONSISTENT SNAPSHOT that all report the same binlog position (MariaDB,
 * no lock; MySQL under a FLUSH TABLES WITH READ LOCK held only while they start), runs the chunks
 * on them and returns that position for the stream.
 */

export interface SnapshotHooks {
  onSlotCreated?: (info: { slotName: string; snapshotName: string | null; consistentPoint: string }) => Promise<void>;
  onFirstStart?: (info: { position: MysqlPosition }) => Promise<MysqlPosition | void>;
}

/**
 * The newest initial-snapshot run of a source that is unfinished and whose coordinator is gone
 * (its lease expired), if any. Waits while a coordinator still holds the lease: that run is
 * either still going or its process just died.
 */
export async function unfinishedInitialRun(store: RunStore, source: string, signal?: AbortSignal): Promise<{ id: string; position: SourcePosition } | null> {
  for (const r of await store.list(200)) {
    if (r.kind !== 'snapshot' || r.source !== source) continue;
    if (r.status === 'done') return null; // the newest run finished: nothing to resume
    while (await store.leaseAlive(r.id)) {
      if (signal?.aborted) return null;
      await sleep(1000);
      if ((await store.get(r.id))?.status === 'done') return null;
    }
    const pos = await store.getMeta(r.id, 'position');
    return pos ? { id: r.id, position: decodePosition(pos) } : null;
  }
  return null;
}

async function samePositionSessions(url: string, n: number, log: Logger): Promise<{ sessions: ChunkSession[]; position: MysqlPosition; close(): Promise<void> }> {
  const reader = await mysqlSnapshotReader({ url });
  try {
    for (let attempt = 1; attempt <= 20; attempt++) {
      const opened = await Promise.all(Array.from({ length: n }, () => reader.sessionAt()));
      const keys = new Set(opened.map((o) => `${o.position.file}:${o.position.pos}`));
      if (keys.size === 1) {
        return { sessions: opened.map((o) => o.session), position: opened[0]!.position, close: () => reader.close() };
      }
      // A commit landed between the sessions' starts: their views differ. Try again.
      await Promise.all(opened.map((o) => o.session.close()));
      log.debug({ attempt }, 'consistent sessions at different binlog positions; retrying');
    }
    // Busy server: one session is always consistent with itself.
    const one = await reader.sessionAt();
    return { sessions: [one.session], position: one.position, close: () => reader.close() };
  } catch (err) {
    await reader.close();
    throw err;
  }
}

/** Hooks for `createSource`, per `snapshot.mode`. */
export function initialSnapshotHooks(cfg: PipelineConfig, source: SourceConfig, kafka: () => Kafka, log: Logger): SnapshotHooks {
  if (cfg.snapshot.mode === 'never') return {};
  if (urlKind(source.url) === 'postgres') {
    return {
      async onSlotCreated(info) {
        if (!info.snapshotName) throw new CdcError('the new slot exported no snapshot', { retriable: true });
        log.info({ consistentPoint: info.consistentPoint }, 'initial snapshot: starting');
        const r = await runSnapshot(cfg, { source: source.name, snapshotName: info.snapshotName, position: { kind: 'pg', lsn: info.consistentPoint }, kafka });
        log.info({ runId: r.runId, rows: r.rows, ms: r.elapsedMs }, 'initial snapshot: done; streaming from the consistent point');
      },
    };
  }
  return {
    async onFirstStart() {
      const redis = redisConnection(cfg.redis.url);
      try {
        const pending = await unfinishedInitialRun(new RunStore(redis, cfg.name), source.name);
        // The stream restarts where the interrupted snapshot's view ended; its unfinished chunks
        // are re-read in watermark windows once streaming runs (resumeInitialSnapshot).
        if (pending && pending.position.kind === 'mysql') return pending.position;
      } finally {
        redis.disconnect();
      }
      const held = await samePositionSessions(source.url, cfg.snapshot.concurrency, log);
      const pool = new SessionPool(held.sessions);
      try {
        log.info({ position: held.position, sessions: held.sessions.length }, 'initial snapshot: starting');
        const r = await runSnapshot(cfg, { source: source.name, snapshotName: null, position: held.position, kafka, pool, ctid: false });
        log.info({ runId: r.runId, rows: r.rows, ms: r.elapsedMs }, 'initial snapshot: done; streaming from its binlog position');
        return held.position;
      } finally {
        await pool.close();
        await held.close();
      }
    },
  };
}

/**
 * After a crash of the process that held the snapshot's consistent view: the chunks it did not
 * finish are re-read as watermark windows while the stream runs (key chunks one for one; tables
 * split by CTID, whose pages no longer say which rows they held, whole). Deferred replica keys
 * are built first, so the sink can apply the stream. Needs the source's signal table.
 */
export async function resumeInitialSnapshot(cfg: PipelineConfig, source: SourceConfig, log: Logger, signal?: AbortSignal): Promise<void> {
  if (cfg.snapshot.mode === 'never') return;
  const redis = redisConnection(cfg.redis.url);
  const store = new RunStore(redis, cfg.name);
  try {
    const pending = await unfinishedInitialRun(store, source.name, signal);
    if (!pending) return;
    const run = (await store.get(pending.id))!;
    const plans = await store.plans<{ id: TableId; chunks: Chunk[] }>(pending.id);
    const done = await store.doneChunks(pending.id);
    // Tables this run created on the replicas get their keys now, before the stream's upserts.
    if (run.note !== 'kafka') {
      const reader = await openReader(source.url);
      try {
        for (const sink of directSinks(cfg, source)) {
          const w = await replicaWriter(sink.url);
          try {
            const db = urlKind(sink.url) === 'postgres' ? decodeURIComponent(new URL(sink.url).pathname.replace(/^\//, '')) || 'postgres' : '';
            for (const p of plans.values()) {
              const schema = await reader.describe(p.id);
              await w.finalize(pending.id, schema, replicaTable(schema.id, sink, db));
            }
          } finally {
            await w.close();
          }
        }
      } finally {
        await reader.close();
      }
    }
    const ranges: { id: TableId; chunks: Chunk[] }[] = [];
    for (const p of plans.values()) {
      const left = p.chunks.filter((c) => !done.has(chunkId(p.id, c.index)));
      if (left.length > 0) ranges.push({ id: p.id, chunks: left });
    }
    if (ranges.length === 0) {
      await store.setStatus(pending.id, 'done', `${run.note}; finished after restart`);
      return;
    }
    if (!signalTableOf(source)) {
      log.error(
        { runId: pending.id, unfinished: ranges.map((r) => tableKey(r.id)) },
        'initial snapshot was interrupted and cannot resume without a signal table (set sources[].postgres.signalTable / mysql.signalTable), or drop the slot / stored offset to start over',
      );
      return;
    }
    log.warn({ runId: pending.id, tables: ranges.map((r) => tableKey(r.id)) }, 'initial snapshot was interrupted: re-reading its unfinished chunks in watermark windows');
    const byTable = ranges.map((r) => ({ id: r.id, chunks: r.chunks.some((c) => c.ctid) ? null : r.chunks }));
    const res = await runIncrementalSnapshot(cfg, { source: source.name, tables: byTable.map((t) => t.id), ranges: new Map(byTable.filter((t) => t.chunks).map((t) => [tableKey(t.id), t.chunks!])), deleteExtra: false, parentRun: pending.id, ...(signal ? { signal } : {}) });
    await store.setStatus(pending.id, 'done', `${run.note}; unfinished chunks re-read by ${res.runId}`);
    log.info({ runId: pending.id, incremental: res.runId, rows: res.rows }, 'interrupted initial snapshot completed');
  } finally {
    redis.disconnect();
  }
}
