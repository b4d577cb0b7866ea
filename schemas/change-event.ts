import type { ColumnValue, Row } from './column-types.js';
import type { SourcePosition } from './position.js';
import { type TableSchema, tableName } from './table-schema.js';

/**
 * c = create (insert), u = update, d = delete, r = read (snapshot), t = truncate.
 * Same letters as Debezium.
 */
export type Op = 'c' | 'u' | 'd' | 'r' | 't';

/** Debezium's `source` block, plus `origin` for multi-master loop prevention. */
export interface SourceInfo {
  /** Version of this project that produced the event. */
  version: string;
  connector: 'postgresql' | 'mysql';
  /** Logical source name from the config; also the topic prefix's middle part. */
  name: string;
  /** Commit time of the source transaction, ms since epoch (snapshot: read time). */
  ts_ms: number;
  /** Commit time in microseconds when the source has it (PostgreSQL), for exact LWW ordering. */
  ts_us?: number;
  snapshot: 'true' | 'false' | 'last' | 'incremental';
  db: string;
  schema: string | null;
  table: string;
  /** Source transaction id: PostgreSQL xid, MySQL/MariaDB GTID. */
  txId: string | null;
  // PostgreSQL
  lsn?: string;
  commit_lsn?: string;
  // MySQL / MariaDB
  file?: string;
  pos?: number;
  row?: number;
  gtid?: string | null;
  server_id?: number;
  /**
   * Node where the change was first written. Set by sources in multi-master meshes; a change whose
   * origin is not the local node was applied by the pipeline and must not be sent back.
   */
  origin?: string;
}

/** Debezium's `transaction` block on each data event. */
export interface TransactionInfo {
  id: string;
  /** 1-based position of this event among all events of the transaction. */
  total_order: number;
  /** 1-based position of this event among the transaction's events for the same table. */
  data_collection_order: number;
}

/**
 * One row-level change. The Kafka value is the Debezium envelope
 * (`before`, `after`, `source`, `op`, `ts_ms`, `transaction`), so existing Debezium consumers can
 * read our topics; `schema` and `position` travel beside it (see `schemas/codec`).
 */
export interface ChangeEvent {
  op: Op;
  /** Row before the change: updates (all columns with REPLICA IDENTITY FULL, else the key) and deletes. */
  before: Row | null;
  /** Row after the change: creates, updates, reads. May hold {@link UNCHANGED} placeholders. */
  after: Row | null;
  source: SourceInfo;
  /** When the connector processed the event, ms since epoch. */
  ts_ms: number;
  transaction: TransactionInfo | null;
  /** Table shape the row was written with. */
  schema: TableSchema;
  /** Position of this change in the source log (opaque to pipeline and sinks). */
  position: SourcePosition;
}

/**
 * Debezium-style transaction boundary record, published to `<prefix>.transaction`, so a sink can
 * tell when it has every event of a source transaction.
 */
export interface TransactionEvent {
  status: 'BEGIN' | 'END';
  id: string;
  /** Total data events in the transaction (END only). */
  event_count: number | null;
  /** Per-table counts (END only). `data_collection` is `db.schema.table` / `db.table`. */
  data_collections: { data_collection: string; event_count: number }[] | null;
  /** Commit time, ms since epoch. */
  ts_ms: number;
  /** Source name from the config. */
  source: string;
  position: SourcePosition;
}

/** Key columns of the changed row, in key order; null for truncates and keyless tables. */
export function eventKey(e: ChangeEvent): Row | null {
  const pk = e.schema.primaryKey;
  const row = e.op === 'd' ? e.before : (e.after ?? e.before);
  if (pk.length === 0 || row === null) return null;
  const key: Row = {};
  for (const col of pk) key[col] = (row[col] ?? null) as ColumnValue;
  return key;
}

/** Key of the row *before* an update, which differs from {@link eventKey} when the key changed. */
export function eventOldKey(e: ChangeEvent): Row | null {
  if (e.op !== 'u' || e.before === null) return null;
  const pk = e.schema.primaryKey;
  if (pk.length === 0 || pk.some((c) => !(c in e.before!))) return null;
  const key: Row = {};
  for (const col of pk) key[col] = e.before[col] ?? null;
  return key;
}

/** True when an update changed the key columns (sinks apply it as delete + insert). */
export function keyChanged(e: ChangeEvent): boolean {
  const oldKey = eventOldKey(e);
  const newKey = eventKey(e);
  return oldKey !== null && newKey !== null && JSON.stringify(oldKey) !== JSON.stringify(newKey);
}

/** Debezium's data collection name for the event's table. */
export function dataCollection(e: ChangeEvent): string {
  return tableName(e.schema.id);
}
