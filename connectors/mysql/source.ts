import mysql from 'mysql2/promise';
import type { Logger } from 'pino';
import type { PipelineConfig, SourceConfig } from '../../config/schema.js';
import { createKafka } from '../../pipeline/kafka.js';
import { CdcError, ConfigError } from '../../schemas/errors.js';
import type { MysqlPosition, SourcePosition } from '../../schemas/position.js';
import type { TableId } from '../../schemas/table-schema.js';
import { counter, gauge } from '../../util/metrics.js';
import { redactUrl } from '../../util/redact.js';
import { retry } from '../../util/retry.js';
import type { SourceBatch, SourceConnector, SourceContext, SourceRecord } from '../source.js';
import { type BinlogStream, type StartPosition, openBinlogStream } from './binlog-stream.js';
import { type ServerInfo, binlogEnd, capturedTables, loadCollations, loadTableSchemas, serverInfo, tableKey, tablesOfDatabase } from './catalog.js';
import { Collations } from './charset.js';
import type { TableRef } from './ddl.js';
import { mysqlError } from './errors.js';
import { BinlogAssembler, type DdlWork } from './events.js';
import { type MysqlSourceHooks, type ResolvedOptions, resolveOptions } from './options.js';
import { type HistoryRecord, type LoadedHistory, type SchemaHistoryStore, applyRecord, foldHistory, historyKey, schemaHistoryStore } from './schema-history.js';
import { readPrivileges, readReplicas, readSettings, settingProblems } from './validate.js';

/** `source.version` of the events this build writes. */
import { CONNECTOR_VERSION } from '../version.js';

const lagSeconds = gauge('cdc_mysql_binlog_lag_seconds', 'Now minus the commit time of the last binlog transaction read', ['source']);
const ddlCount = counter('cdc_mysql_ddl_total', 'DDL statements recorded in the schema history', ['source']);

/**
 * The MySQL/MariaDB source: our own binlog client (binlog-stream.ts) into Kafka, resuming by
 * GTID, with a schema history. See docs/mysql-source.md.
 */
export function createMysqlSource(source: SourceConfig, cfg: PipelineConfig, hooks: MysqlSourceHooks = {}): SourceConnector {
  const o = resolveOptions(source, cfg);
  let closed = false;
  const closers = new Set<() => Promise<void>>();
  return {
    name: source.name,
    kind: 'mysql',
    validate: () => validateSource(o, hooks),
    async run(ctx) {
      if (closed) throw new CdcError(`source ${source.name} is closed`, { retriable: false });
      await runStream(ctx, o, cfg, hooks, closers);
    },
    async close() {
      closed = true;
      await Promise.allSettled([...closers].map((c) => c()));
      closers.clear();
    },
  };
}

createMysqlSource satisfies (source: SourceConfig, cfg: PipelineConfig) => SourceConnector;

async function connect(o: ResolvedOptions, what: string): Promise<mysql.Connection> {
  try {
    return await mysql.createConnection({
      uri: o.url.replace(/^mariadb:/i, 'mysql:'),
      supportBigNumbers: true,
      bigNumberStrings: true,
      dateStrings: true,
      connectTimeout: 10_000,
    });
  } catch (err) {
    throw mysqlError(err, `${what}: cannot connect to ${redactUrl(o.url)}`);
  }
}

async function validateSource(o: ResolvedOptions, hooks: MysqlSourceHooks): Promise<void> {
  // A server that is restarting gets a few seconds (backoff); one that stays away fails the start.
  const conn = await retry(() => connect(o, `source ${o.sourceName}`), { maxAttempts: 6 });
  try {
    const info = await serverInfo(conn);
    const problems = settingProblems(info, await readSettings(conn, info), await readPrivileges(conn), await readReplicas(conn), { serverId: o.serverId, reportHost: o.reportHost });
    if (o.startFrom === 'snapshot' && !hooks.onFirstStart) {
      problems.push(`sources.${o.sourceName}.mysql.startFrom: snapshot needs the snapshot job to start this source (it stores the start position); use end to stream from the current binlog end`);
    }
    if (problems.length > 0) throw new ConfigError(problems.map((p) => `source ${o.sourceName}: ${p}`));
  } finally {
    await conn.end().catch(() => undefined);
  }
}

/** Captured tables a DDL statement changes: re-read, and gone. */
async function affectedTables(meta: mysql.Connection, o: ResolvedOptions, w: DdlWork, known: Iterable<string>): Promise<{ refresh: TableId[]; dropped: TableId[] }> {
  const id = (r: TableRef): TableId => ({ db: r.db ?? w.db, schema: null, table: r.table });
  const captured = (t: TableId) => o.filter(t.db, t.table);
  const st = w.statement;
  const refresh: TableId[] = [];
  const dropped: TableId[] = [];
  const knownOf = (db: string): TableId[] =>
    [...known].map((k) => k.split('\u0000') as [string, string]).filter(([d]) => d === db).map(([d, t]) => ({ db: d, schema: null, table: t }));
  switch (st.kind) {
    case 'create-table':
      if (!st.temporary) refresh.push(id(st.table));
      break;
    case 'alter-table':
      if (st.renameTo) {
        dropped.push(id(st.table));
        refresh.push(id(st.renameTo));
      } else refresh.push(id(st.table));
      break;
    case 'index':
      refresh.push(id(st.table));
      break;
    case 'drop-table':
      if (!st.temporary) dropped.push(...st.tables.map(id));
      break;
    case 'rename-table':
      for (const [a, b] of st.pairs) {
        dropped.push(id(a));
        refresh.push(id(b));
      }
      break;
    case 'database':
      if (st.action === 'drop') dropped.push(...knownOf(st.db));
      else if (st.action === 'create' && o.filter.database(st.db)) refresh.push(...(await tablesOfDatabase(meta, st.db, o.filter)));
      break;
    case 'unknown-ddl':
      // Could not read the statement: re-read every captured table of its database.
      if (w.db !== '' && o.filter.database(w.db)) {
        const now = await tablesOfDatabase(meta, w.db, o.filter);
        refresh.push(...now);
        const live = new Set(now.map((t) => t.table));
        dropped.push(...knownOf(w.db).filter((t) => !live.has(t.table)));
      }
      break;
    default:
      break;
  }
  return { refresh: refresh.filter(captured), dropped: dropped.filter(captured) };
}

async function runStream(ctx: SourceContext, o: ResolvedOptions, cfg: PipelineConfig, hooks: MysqlSourceHooks, closers: Set<() => Promise<void>>): Promise<void> {
  const log = ctx.log.child({ component: 'mysql-source', serverId: o.serverId });
  const cleanups: (() => Promise<void>)[] = [];
  const closeAll = async () => {
    await Promise.allSettled(cleanups.map((c) => c()));
    cleanups.length = 0;
  };
  closers.add(closeAll);
  try {
    const meta = await connect(o, `source ${o.sourceName}`);
    cleanups.push(() => meta.end().catch(() => undefined));
    const info = await serverInfo(meta);
    const collations = new Collations();
    await loadCollations(meta, collations);

    const kafka = createKafka(cfg.kafka);
    const store = await schemaHistoryStore(kafka, o.schemaHistoryTopic, { replicationFactor: o.replicationFactor });
    cleanups.push(() => store.close());

    const stored = await ctx.loadCheckpoint();
    if (stored !== null && stored.kind !== 'mysql') {
      throw new CdcError(`source ${o.sourceName}: the stored checkpoint is a ${stored.kind} position, not a MySQL one (was the source renamed?)`, { retriable: false, code: 'CONFIG' });
    }
    let checkpoint: MysqlPosition | null = stored;
    const records = await store.load();
    let history = foldHistory(records, checkpoint, info.flavor);
    log.info({ checkpoint, historyRecords: history.count, historyTopic: store.topic }, 'mysql source starting');

    if (checkpoint === null) {
      const end = await binlogEnd(meta, info);
      let start: MysqlPosition = { kind: 'mysql', file: end.file, pos: end.pos, ...(end.gtid ? { gtidSet: end.gtid } : {}) };
      if (hooks.onFirstStart) start = (await hooks.onFirstStart({ position: start })) ?? start;
      else if (o.startFrom === 'snapshot') throw new CdcError(`source ${o.sourceName}: startFrom snapshot needs the snapshot job`, { retriable: false, code: 'CONFIG' });
      history = await snapshotSchemas(meta, info, o, store, start, 'first start', collations);
      // Store the start at once: a crash before the first event must resume here, not at a later end.
      await ctx.publish({ records: [], checkpoint: start });
      checkpoint = start;
      log.info({ start }, 'no stored position: streaming from the binlog end');
    } else if (!history.hasSnapshot) {
      // The history topic is gone (or never written): the TABLE_MAPs still decode every row; the
      // history's extras (column type text, MariaDB JSON) come from the current definitions.
      log.warn({ topic: store.topic }, 'schema history is empty although a position is stored: recording the current table definitions');
      const pending = history.pending;
      history = await snapshotSchemas(meta, info, o, store, checkpoint, 'history lost', collations);
      for (const [k, r] of pending) history.pending.set(k, r);
    }

    await pump(ctx, o, info, collations, meta, store, history, checkpoint, log, cleanups);
  } finally {
    closers.delete(closeAll);
    await closeAll();
  }
}

/** Records the current definitions of every captured table at `at` (a snapshot group). */
async function snapshotSchemas(
  meta: mysql.Connection,
  info: ServerInfo,
  o: ResolvedOptions,
  store: SchemaHistoryStore,
  at: MysqlPosition,
  why: string,
  collations: Collations,
): Promise<LoadedHistory> {
  const tables = await capturedTables(meta, o.filter);
  const defs = await loadTableSchemas(meta, info.flavor, tables, collations);
  const snapshotId = `${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  const list = [...defs.values()];
  const records: HistoryRecord[] = [];
  // Several tables per record, but well under Kafka's 1 MB message limit.
  for (let i = 0; i < Math.max(1, list.length); i += 25) {
    records.push({
      v: 1,
      source: o.sourceName,
      kind: 'snapshot',
      position: { file: at.file, pos: at.pos, ...(at.gtidSet ? { gtid: at.gtidSet } : {}) },
      ts_ms: Date.now(),
      db: '',
      ddl: `-- ${why}`,
      tables: list.slice(i, i + 25).map((d) => ({ id: d.schema.id, schema: d.schema, collations: d.collations })),
      snapshotId,
      last: i + 25 >= list.length,
    });
  }
  await store.append(records);
  const state: LoadedHistory['state'] = new Map();
  for (const r of records) applyRecord(state, r);
  return { state, pending: new Map(), count: records.length, hasSnapshot: true };
}

function startOf(cp: MysqlPosition): StartPosition {
  return cp.gtidSet ? { gtid: cp.gtidSet, file: cp.file, pos: cp.pos } : { file: cp.file, pos: cp.pos };
}

/**
 * The replication loop: decode, assemble, batch, publish. One publish is in flight while the next
 * batch fills; when that one is full too the loop stops reading, the stream's buffer fills and
 * its socket pauses, so the server waits on TCP (bounded memory however large the transaction).
 */
async function pump(
  ctx: SourceContext,
  o: ResolvedOptions,
  info: ServerInfo,
  collations: Collations,
  meta: mysql.Connection,
  store: SchemaHistoryStore,
  history: LoadedHistory,
  checkpoint: MysqlPosition,
  log: Logger,
  cleanups: (() => Promise<void>)[],
): Promise<void> {
  const assembler = new BinlogAssembler(
    {
      pipeline: o.pipeline,
      sourceName: o.sourceName,
      version: CONNECTOR_VERSION,
      origin: o.origin,
      ...(o.localOnly ? { localServerId: info.serverId } : {}),
      flavor: info.flavor,
      filter: o.filter,
      collations,
      warn: (msg, fields) => log.warn(fields, msg),
    },
    checkpoint,
  );
  assembler.setHistory(history.state);

  const stream: BinlogStream = await openBinlogStream({
    url: o.url,
    serverId: o.serverId,
    reportHost: o.reportHost,
    flavor: info.flavor,
    start: startOf(checkpoint),
    heartbeatMs: o.heartbeatIntervalMs > 0 ? o.heartbeatIntervalMs : 10_000,
    highWaterBytes: o.readAheadBytes,
  });
  cleanups.unshift(() => stream.close());
  log.info({ start: startOf(checkpoint), flavor: info.flavor }, 'binlog stream open');

  const processDdl = async (w: DdlWork) => {
    const key = historyKey({ file: w.file, pos: w.pos, ...(w.gtid ? { gtid: w.gtid } : {}) });
    let rec = history.pending.get(key);
    if (rec) {
      history.pending.delete(key); // recorded before a restart: replay it as it was
    } else {
      const { refresh, dropped } = await affectedTables(meta, o, w, assembler.historyState.keys());
      if (refresh.length === 0 && dropped.length === 0) return;
      const now = await loadTableSchemas(meta, info.flavor, refresh, collations);
      rec = {
        v: 1,
        source: o.sourceName,
        kind: 'ddl',
        position: { file: w.file, pos: w.pos, ...(w.gtid ? { gtid: w.gtid } : {}) },
        ts_ms: w.ts_ms,
        db: w.db,
        ddl: w.query,
        tables: [
          ...refresh.map((id) => {
            const def = now.get(tableKey(id.db, id.table));
            return { id, schema: def?.schema ?? null, ...(def ? { collations: def.collations } : {}) };
          }),
          ...dropped.filter((d) => !refresh.some((r) => r.db === d.db && r.table === d.table)).map((id) => ({ id, schema: null })),
        ],
      };
      // Acknowledged before anything after the DDL is published: the history is never behind.
      await store.append([rec]);
      ddlCount.inc({ source: o.sourceName });
    }
    const state = new Map(assembler.historyState);
    applyRecord(state, rec);
    assembler.setHistory(state);
    log.info({ ddl: w.query.slice(0, 200), tables: rec.tables.map((t) => `${t.id.db}.${t.id.table}`) }, 'schema change');
  };

  let records: SourceRecord[] = [];
  let bytes = 0;
  // Estimated bytes per table topic: Kafka limits each partition's record batch
  // (message.max.bytes), and a partition only ever gets records of one table.
  const tableBytes = new Map<string, number>();
  let maxTableBytes = 0;
  /** Position after the last event group whose records are in `records` (or already published). */
  let lastCommit: MysqlPosition | null = null;
  let storedAt = Date.now();
  const st = { inflight: null as Promise<void> | null, error: null as unknown };

  const aborted = new Promise<'abort'>((resolve) => {
    if (ctx.signal.aborted) resolve('abort');
    else ctx.signal.addEventListener('abort', () => resolve('abort'), { once: true });
  });

  const flush = (cp: SourcePosition | null) => {
    const batch: SourceBatch = { records, checkpoint: cp };
    records = [];
    bytes = 0;
    tableBytes.clear();
    maxTableBytes = 0;
    if (cp !== null) {
      lastCommit = null;
      storedAt = Date.now();
    }
    const p = ctx.publish(batch).then(
      () => {
        if (st.inflight === p) st.inflight = null;
      },
      (err: unknown) => {
        st.error = err;
        if (st.inflight === p) st.inflight = null;
      },
    );
    st.inflight = p;
  };

  let next: Promise<Awaited<ReturnType<BinlogStream['next']>>> | null = null;
  try {
    for (;;) {
      if (st.error) throw st.error;
      next ??= stream.next();
      const waitFor: Promise<unknown>[] = [next, aborted];
      if (st.inflight) waitFor.push(st.inflight.then(() => 'published' as const));
      const got = await Promise.race(waitFor);
      if (got === 'abort') break;
      if (got === 'published') {
        if (st.error) throw st.error;
        // What piled up while the last batch was in flight goes now; a bare position advance
        // (traffic we do not capture) at most once a second.
        if (!assembler.inTransaction && (records.length > 0 || (lastCommit !== null && Date.now() - storedAt >= 1000))) flush(lastCommit);
        continue;
      }
      next = null;
      const ev = got as Awaited<ReturnType<BinlogStream['next']>>;
      if (ev === null) break; // closed
      const res = assembler.handle(ev, records);
      bytes += res.bytes;
      if (res.table !== null && res.bytes > 0) {
        const b = (tableBytes.get(res.table) ?? 0) + res.bytes;
        tableBytes.set(res.table, b);
        if (b > maxTableBytes) maxTableBytes = b;
      }
      if (res.ddl) await processDdl(res.ddl);
      if (res.commit) {
        lastCommit = res.commit;
        lagSeconds.set({ source: o.sourceName }, Math.max(0, Date.now() / 1000 - ev.header.timestamp));
      }
      const boundary = !assembler.inTransaction;
      if (res.heartbeat && boundary) {
        if (o.heartbeatIntervalMs > 0 && Date.now() - assembler.lastHeartbeat >= o.heartbeatIntervalMs) assembler.heartbeat(records);
        if (lastCommit === null && records.length > 0) lastCommit = assembler.position();
      }
      // Full when one table's records reach maxBatchBytes, or all together four times that.
      const full = records.length >= o.maxBatchEvents || maxTableBytes >= o.maxBatchBytes || bytes >= 4 * o.maxBatchBytes;
      if (full) {
        // Wait for the batch in flight: at most two batches are ever held.
        if (st.inflight) await st.inflight;
        if (st.error) throw st.error;
        flush(boundary ? lastCommit : null);
      } else if (boundary && st.inflight === null && (records.length > 0 || lastCommit !== null)) {
        const caughtUp = stream.buffered === 0;
        // Events go out as soon as the backlog is read (latency); a bare position advance at
        // most once a second (or every 5 s under a stream of transactions we do not capture).
        if ((caughtUp && (records.length > 0 || Date.now() - storedAt >= 1000)) || (lastCommit !== null && Date.now() - storedAt >= 5000)) {
          flush(lastCommit);
        }
      }
    }
    // Stopping: let the batch in flight land; unpublished records are read again next run.
    if (st.inflight) await st.inflight;
    if (st.error) throw st.error;
    log.info({ position: assembler.position() }, 'mysql source stopped');
  } finally {
    await stream.close();
  }
}
