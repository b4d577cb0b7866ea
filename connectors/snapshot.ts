import type { ColumnValue, Row } from '../schemas/column-types.js';
import type { SourcePosition } from '../schemas/position.js';
import type { TableId, TableSchema } from '../schemas/table-schema.js';

/**
 * Reading tables in chunks, for snapshots, backfills and verification (Debezium's
 * `SnapshotChangeEventSource` + its chunk queries, PeerDB's partitioned initial load). One
 * implementation per dialect: `postgres/snapshot.ts`, `mysql/snapshot.ts`.
 */

/** Canonical values of the key columns, in key order. */
export type KeyTuple = ColumnValue[];

/**
 * One unit of snapshot or verify work. Key chunks cover the half-open key range `[lo, hi)`
 * (null = unbounded), so consecutive chunks tile the whole key space, including keys written
 * after planning. CTID chunks (PostgreSQL, keyless tables or one held snapshot) cover the heap
 * pages `[from, to)`.
 */
export interface Chunk {
  /** 0-based, in key (or page) order. */
  index: number;
  lo: KeyTuple | null;
  hi: KeyTuple | null;
  ctid?: { from: number; to: number | null };
  /** Planner's row estimate, for progress before the chunk ran. */
  estRows: number;
}

/** A point-in-time view of the source that several connections can share. */
export interface SnapshotPoint {
  /** PostgreSQL: exported snapshot name; MySQL: none (each session takes its own consistent read). */
  snapshotName: string | null;
  /** Where the stream continues for data read at this point. */
  position: SourcePosition;
}

/** A connection reading chunks, inside one consistent read when it was opened on a snapshot. */
export interface ChunkSession {
  /** Canonical rows of the chunk, in key order (see the value table in schemas/column-types.ts). */
  readChunk(schema: TableSchema, chunk: Chunk): Promise<Row[]>;
  /** Commits (ends the read) and releases the connection. Idempotent. */
  close(): Promise<void>;
}

export interface SnapshotReader {
  readonly dialect: 'postgres' | 'mysql';
  /** Tables the source captures (its include/exclude filter applied), in name order. */
  listTables(): Promise<TableId[]>;
  /** Columns, canonical types and key of a table as it is now. Throws CdcError when it does not exist. */
  describe(id: TableId): Promise<TableSchema>;
  /** Cheap row-count estimate (statistics), for chunking and progress. */
  estimateRows(id: TableId): Promise<number>;
  /**
   * Splits a table into chunks of about `chunkRows` rows: key ranges from the key index (one pass,
   * like Debezium's chunk boundaries), or CTID page ranges (PostgreSQL) when `ctid` is set or the
   * table has no key.
   */
  planChunks(schema: TableSchema, chunkRows: number, opts?: { ctid?: boolean }): Promise<Chunk[]>;
  /** Opens a chunk-reading session; inside the given snapshot when `snapshotName` is set (PostgreSQL). */
  session(snapshotName?: string | null): Promise<ChunkSession>;
  close(): Promise<void>;
}

/** Key tuple of a canonical row. */
export function keyOf(schema: TableSchema, row: Row): KeyTuple {
  return schema.primaryKey.map((k) => row[k] ?? null);
}

/** Stable id of a table's chunk, for job ids and completion markers. */
export function chunkId(table: TableId, index: number): string {
  return `${table.db}.${table.schema ?? ''}.${table.table}#${index}`;
}
