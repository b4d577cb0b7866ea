import type pg from 'pg';
import type { Logger } from 'pino';
import type { PipelineConfig, SourceConfig } from '../../config/schema.js';
import { CdcError } from '../../schemas/errors.js';
import { logger } from '../../util/log.js';
import { gauge } from '../../util/metrics.js';
import type { SourceBatch, SourceConnector, SourceContext, SourceRecord } from '../source.js';
import { TypeCache, endClient, openSql, sql } from './catalog.js';
import { TransactionAssembler } from './events.js';
import { type Lsn, formatLsn, parseLsn } from './lsn.js';
import { type PostgresSourceHooks, type ResolvedOptions, resolveOptions } from './options.js';
import { describeRelation } from './relations.js';
import { ReplicationConnection, type ReplicationStream } from './replication-stream.js';
import { ensureHeartbeatTable, ensurePublication, planTables, slotInfo, writeHeartbeat } from './setup.js';
import { validateServer } from './validate.js';

import { CONNECTOR_VERSION } from '../version.js';

const retainedWal = gauge('cdc_pg_slot_retained_wal_bytes', 'WAL the replication slot keeps on the source (pg_current_wal_lsn - restart_lsn)', ['source', 'slot']);
const confirmedLag = gauge('cdc_pg_slot_confirmed_lag_bytes', 'WAL between the source end and the LSN the connector confirmed', ['source', 'slot']);

/**
 * The PostgreSQL source: logical replication with pgoutput into Kafka (Debezium's PostgreSQL
 * connector, PeerDB's pull connector). See docs/postgres-source.md.
 */
export function createPostgresSource(source: SourceConfig, cfg: PipelineConfig, hooks: PostgresSourceHooks = {}): SourceConnector {
  const o = resolveOptions(source, cfg);
  let closed = false;
  const closers = new Set<() => Promise<void>>();
  return {
    name: source.name,
    kind: 'postgres',
    validate: () => validateServer(o, logger().child({ source: source.name, component: 'pg-source' })),
    async run(ctx) {
      if (closed) throw new CdcError(`source ${source.name} is closed`, { retriable: false });
      await runStream(ctx, o, hooks, closers);
    },
    async close() {
      closed = true;
      await Promise.allSettled([...closers].map((c) => c()));
      closers.clear();
    },
  };
}

createPostgresSource satisfies (source: SourceConfig, cfg: PipelineConfig) => SourceConnector;

/** Serialises background work on one connection (heartbeats, WAL checks, table refresh). */
function serial(log: Logger) {
  let tail: Promise<void> = Promise.resolve();
  return (what: string, task: () => Promise<void>) => {
    tail = tail.then(task).catch((err: unknown) => log.warn({ err: (err as Error).message }, `${what} failed`));
  };
}

async function runStream(ctx: SourceContext, o: ResolvedOptions, hooks: PostgresSourceHooks, closers: Set<() => Promise<void>>): Promise<void> {
  const log = ctx.log.child({ component: 'pg-source', slot: o.slot });
  const clients: (() => Promise<void>)[] = [];
  const timers: NodeJS.Timeout[] = [];
  const closeAll = async () => {
    for (const t of timers) clearInterval(t);
    await Promise.allSettled(clients.map((close) => close()));
  };
  closers.add(closeAll);
  try {
    // Catalog reads are quick: a query that hangs means a dead connection, and the run restarts.
    const meta = await openSql(o.url, `cdc-${o.sourceName}-meta`, 10_000, 60_000);
    clients.push(() => endClient(meta));

    if (o.heartbeatEnabled) await ensureHeartbeatTable(meta, o.heartbeatTable, log);
    const plan = await planTables(meta, o, o.filter, log);
    for (const t of plan.skippedKeyless) log.warn({ table: `${t.schema}.${t.table}` }, 'table has no primary key: not captured (postgres.keylessTables: skip)');
    await ensurePublication(meta, o, plan, log);

    const repl = await ReplicationConnection.open(o.url, `cdc-${o.sourceName}`);
    clients.push(() => repl.close());
    const ident = await repl.identifySystem();
    const db = ident.dbname ?? (await sql(meta, 'select current_database() as d'))[0]?.d ?? '';
    const startLsn = await ensureSlot(repl, meta, o, hooks, log);

    const bg = await openSql(o.url, `cdc-${o.sourceName}-bg`, 10_000, 60_000);
    clients.push(() => endClient(bg));
    const background = serial(log);
    const every = (ms: number, what: string, task: () => Promise<void>) => {
      if (ms <= 0) return;
      const t = setInterval(() => background(what, task), ms);
      t.unref();
      timers.push(t);
    };
    let walWarnedAt = 0;
    const checkWal = async () => {
      const [r] = await sql(
        bg,
        `select (pg_current_wal_lsn() - restart_lsn)::int8::text as retained, (pg_current_wal_lsn() - confirmed_flush_lsn)::int8::text as lag
           from pg_replication_slots where slot_name = $1`,
        [o.slot],
      );
      if (!r) return;
      const retained = Number(r.retained ?? 0);
      retainedWal.set({ source: o.sourceName, slot: o.slot }, retained);
      confirmedLag.set({ source: o.sourceName, slot: o.slot }, Number(r.lag ?? 0));
      if (retained > o.maxRetainedWalMb * 1024 * 1024 && Date.now() - walWarnedAt > 10 * 60_000) {
        walWarnedAt = Date.now();
        log.warn({ retainedMb: Math.round(retained / 1048576), maxRetainedWalMb: o.maxRetainedWalMb }, 'replication slot retains more WAL than postgres.maxRetainedWalMb');
      }
    };
    background('retained WAL check', checkWal);
    every(o.walCheckIntervalMs, 'retained WAL check', checkWal);
    if (o.heartbeatEnabled) every(o.heartbeatIntervalMs, 'heartbeat', () => writeHeartbeat(bg, o.heartbeatTable, o.slot));
    if (o.publicationMode === 'filtered') {
      every(o.tableRefreshIntervalMs, 'publication refresh', async () => {
        await ensurePublication(bg, o, await planTables(bg, o, o.filter, log), log);
      });
    }

    log.info({ publication: o.publication, startLsn: formatLsn(startLsn), db }, 'starting replication');
    const stream = repl.startReplication(o.slot, startLsn, [o.publication], { statusIntervalMs: o.statusIntervalMs });
    stream.confirm(startLsn, true);
    await pump(ctx, o, stream, meta, db, log);
  } finally {
    closers.delete(closeAll);
    await closeAll();
  }
}

/** Creates the slot when absent (running the onSlotCreated hook) and returns where to stream from. */
async function ensureSlot(repl: ReplicationConnection, meta: pg.Client, o: ResolvedOptions, hooks: PostgresSourceHooks, log: Logger): Promise<Lsn> {
  const existing = await slotInfo(meta, o.slot);
  if (existing) {
    if (existing.active) {
      // After a kill -9 the old walsender holds the slot until it notices its client is gone.
      throw new CdcError(`replication slot ${o.slot} is in use by process ${existing.activePid ?? '?'}`, { retriable: true, code: 'PG_SLOT_ACTIVE' });
    }
    return parseLsn(existing.confirmedFlush ?? existing.restartLsn ?? '0/0');
  }
  let created;
  try {
    created = await repl.createSlot(o.slot, hooks.onSlotCreated !== undefined);
  } catch (err) {
    if (err instanceof CdcError && err.code === 'PG_42710') throw new CdcError(`replication slot ${o.slot} was created by someone else meanwhile`, { retriable: true, cause: err });
    throw err;
  }
  log.info({ consistentPoint: formatLsn(created.consistentPoint) }, 'created replication slot');
  if (hooks.onSlotCreated) {
    try {
      await hooks.onSlotCreated({ slotName: created.slotName, snapshotName: created.snapshotName, consistentPoint: formatLsn(created.consistentPoint) });
    } catch (err) {
      // Without the snapshot the slot's start is meaningless: drop it so the next run retakes both.
      await repl.close();
      await sql(meta, 'select pg_drop_replication_slot($1)', [o.slot]).catch(() => undefined);
      throw err;
    }
  }
  return created.consistentPoint;
}

/**
 * The replication loop: decode, assemble, batch, publish, confirm. One publish is in flight
 * while the next batch fills; when that one is full too, the loop stops reading, the stream's
 * queue fills and its socket pauses, so the walsender waits on TCP (bounded memory however large
 * the transaction).
 */
async function pump(ctx: SourceContext, o: ResolvedOptions, stream: ReplicationStream, meta: pg.Client, db: string, log: Logger): Promise<void> {
  const assembler = new TransactionAssembler({ sourceName: o.sourceName, version: CONNECTOR_VERSION, origin: o.origin, localOnly: o.localOnly });
  const types = new TypeCache();
  const warned = new Set<string>();

  let records: SourceRecord[] = [];
  let bytes = 0;
  /** End LSN of the last transaction whose commit is in `records` (or was, for an empty batch). */
  let commitEnd: Lsn | null = null;
  // In an object: the flush closure updates them, which TypeScript's narrowing cannot see.
  const st = { inflight: null as Promise<void> | null, error: null as unknown };

  const onAbort = () => stream.interrupt();
  ctx.signal.addEventListener('abort', onAbort, { once: true });

  const flush = () => {
    const end = commitEnd;
    if (records.length === 0) {
      // Nothing to publish: everything before is in Kafka once the batch in flight is.
      if (end !== null && st.inflight === null) stream.confirm(end);
      if (st.inflight === null) commitEnd = null;
      return;
    }
    const batch: SourceBatch = {
      records,
      checkpoint: !assembler.inTransaction && end !== null ? { kind: 'pg', lsn: formatLsn(end) } : null,
    };
    records = [];
    bytes = 0;
    commitEnd = null;
    const p = ctx.publish(batch).then(
      () => {
        if (end !== null) stream.confirm(end);
        if (st.inflight === p) st.inflight = null;
        stream.interrupt();
      },
      (err: unknown) => {
        st.error = err;
        if (st.inflight === p) st.inflight = null;
        stream.interrupt();
      },
    );
    st.inflight = p;
  };

  /** Back-pressure point: wait for the batch in flight, then send this one. */
  const flushFull = async () => {
    if (st.inflight) await st.inflight;
    if (st.error) throw st.error;
    flush();
  };

  try {
    for (;;) {
      if (st.error) throw st.error;
      if (ctx.signal.aborted) break;
      const item = await stream.next();
      if (item.kind === 'wake') {
        // A publish finished (or a stop was asked for): send what piled up meanwhile.
        if (st.error) throw st.error;
        if (st.inflight === null && (records.length > 0 || commitEnd !== null)) flush();
        continue;
      }
      if (item.kind === 'end') {
        if (item.error) throw item.error;
        if (ctx.signal.aborted) break;
        throw new CdcError('replication stream ended by the server', { retriable: true, code: 'PG_STREAM_END' });
      }
      if (item.kind === 'keepalive') {
        // Idle (no open transaction, nothing unpublished): every change before the server's
        // WAL end is in Kafka, so the slot may move there even if other databases wrote it all.
        if (!assembler.inTransaction && records.length === 0 && commitEnd === null && st.inflight === null) stream.confirm(item.walEnd, true);
      } else {
        const msg = item.msg;
        switch (msg.tag) {
          case 'begin':
            assembler.begin(msg, item.dataStart);
            break;
          case 'commit':
            assembler.commit(msg, records);
            commitEnd = msg.endLsn;
            break;
          case 'insert':
          case 'update':
          case 'delete':
            // A large row goes into a batch of its own rather than pushing one over Kafka's size limit.
            if (records.length > 0 && bytes + msg.bytes * 1.4 > o.maxBatchBytes) await flushFull();
            bytes += assembler.change(msg, item.dataStart, records);
            break;
          case 'truncate':
            bytes += assembler.truncate(msg, item.dataStart, records);
            break;
          case 'relation': {
            const previous = assembler.relations.get(msg.relationId);
            assembler.relations.set(msg.relationId, await describeRelation(msg, { client: meta, types, db, o, log, warned, ...(previous ? { previous } : {}) }));
            break;
          }
          case 'type':
            types.forget([msg.typeOid]);
            break;
          case 'origin':
            assembler.origin(msg.name);
            break;
          case 'message':
            break;
        }
      }
      const full = records.length >= o.maxBatchEvents || bytes >= o.maxBatchBytes;
      if (full) {
        await flushFull();
      } else if (st.inflight === null && stream.pending === 0 && (records.length > 0 || commitEnd !== null)) {
        flush();
      }
    }
    // Stopping: let the batch in flight land so its LSN is confirmed; unsent records are re-read next run.
    if (st.inflight) await st.inflight;
    log.info({ confirmed: formatLsn(stream.confirmedLsn) }, 'replication stopped');
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
    stream.stop();
  }
}
