import type { ColumnType, ColumnValue } from '../schemas/column-types.js';
import type { ColumnSchema, TableSchema } from '../schemas/table-schema.js';
import type { RowVersion } from './conflict/version.js';

/** SQL text and its positional parameters. Built by a dialect, run by the sink (one place). */
export interface SqlQuery {
  text: string;
  params: unknown[];
}

/** Where a replica table lives: PostgreSQL schema + table, or MySQL database + table. */
export interface QualifiedName {
  schema: string;
  table: string;
}

/** A replica column as the replica describes it. */
export interface ReplicaColumn {
  name: string;
  /** The replica's own type text (PostgreSQL `format_type`, MySQL `COLUMN_TYPE`). */
  type: string;
  nullable: boolean;
  /** MySQL string columns: character set and collation. */
  charset?: string | null;
  collation?: string | null;
}

export interface ReplicaTable {
  name: QualifiedName;
  columns: Map<string, ReplicaColumn>;
  primaryKey: string[];
}

/** A column to create or add: name, replica type text, nullability, optional literal default. */
export interface ColumnDef {
  name: string;
  type: string;
  nullable: boolean;
  /** SQL literal, already rendered by the dialect (never an expression from the source). */
  defaultLiteral?: string;
}

/**
 * A record set column: the source column (for value conversion) and the replica column it lands
 * in (for the SQL expression that turns the transported text into the column's type).
 */
export interface Binding {
  source: ColumnSchema;
  target: ReplicaColumn;
}

/** A stored version (tombstone, truncate horizon or row). */
export interface StoredVersion {
  ts: string | number | bigint;
  origin: string | Buffer;
  ord: string | Buffer;
}

/** Names of the version columns every replica table gets. */
export const VERSION_COLUMNS = { ts: '_cdc_ts', origin: '_cdc_origin', order: '_cdc_order' } as const;
export const HIDDEN_COLUMNS: readonly string[] = Object.values(VERSION_COLUMNS);

/**
 * Builds the SQL a sink runs against one replica dialect (Debezium JDBC sink's `DatabaseDialect`,
 * drizzle's `PgDialect`): upserts, deletes, DDL and the sink's own bookkeeping. It never executes
 * anything. Every identifier goes through `quote`; every value is a parameter. Rows travel as one
 * parameter per column (PostgreSQL text arrays) or one JSON parameter (MySQL `JSON_TABLE`), so a
 * statement's size does not grow with its placeholder count.
 */
export interface SqlDialect {
  readonly kind: 'postgres' | 'mysql';
  /** Longest identifier the replica accepts, in bytes (PostgreSQL) or characters (MySQL). */
  readonly maxIdentifierLength: number;
  quote(identifier: string): string;
  qualified(n: QualifiedName): string;
  /** Why the replica would refuse (or silently change) this identifier; null when fine. */
  identifierProblem(identifier: string): string | null;

  // --- types and values ----------------------------------------------------------------------
  /** Replica type for a source column (verbatim when the dialects match, else via the neutral type). */
  columnType(col: ColumnSchema, source: TableSchema['dialect'], opts: { key: boolean; keyColumns: number }): string;
  /** The column's default as a literal the replica accepts, when it is a plain constant. */
  defaultLiteral(col: ColumnSchema, source: TableSchema['dialect']): string | undefined;
  /** Converts a canonical value for transport; throws PoisonRecordError when it cannot fit. */
  toCell(v: ColumnValue, from: ColumnType, to: ReplicaColumn): string | number | null;
  /** The version columns every replica table carries (see VERSION_COLUMNS). */
  versionColumnDefs(): ColumnDef[];

  // --- replica tables ------------------------------------------------------------------------
  createSchema(schema: string): SqlQuery;
  createTable(n: QualifiedName, columns: ColumnDef[], primaryKey: string[]): SqlQuery;
  addColumn(n: QualifiedName, c: ColumnDef): SqlQuery;
  alterColumnType(n: QualifiedName, c: ColumnDef): SqlQuery;
  dropNotNull(n: QualifiedName, c: ReplicaColumn): SqlQuery;
  dropColumn(n: QualifiedName, column: string): SqlQuery;
  /** Rows: name, type, nullable (bool-ish), charset, collation, pk_position (null unless key). */
  introspect(n: QualifiedName): SqlQuery;
  /** The neutral-map fallback for a verbatim type the replica does not know (PostgreSQL user types). */
  unknownTypes?(types: string[]): SqlQuery;

  // --- data ----------------------------------------------------------------------------------
  /** Rows (i, ts, origin, ord) for the keys (row index i) present in the table. */
  readVersions(n: QualifiedName, key: Binding[], keys: (string | number | null)[][]): SqlQuery;
  /**
   * Both in one statement: rows (src 0, i, ts, origin, ord) for the keys present in the table, and
   * rows (src 1, key_hash, ts, origin, ord) for the tombstones among `hashes`.
   */
  readLocalState(n: QualifiedName, key: Binding[], keys: (string | number | null)[][], meta: string, tbl: string, hashes: string[]): SqlQuery;
  /** Rows (i, row_json) of the keys present in the table (conflict log). */
  readRowsJson(n: QualifiedName, key: Binding[], keys: (string | number | null)[][], columns: string[]): SqlQuery;
  /**
   * Insert-or-update of many rows. `cells[r][c]` belongs to `columns[c]`; the version columns
   * come last in `columns`. Only `update` columns change on an existing row.
   */
  upsert(n: QualifiedName, columns: Binding[], cells: (string | number | null)[][], key: string[], update: string[]): SqlQuery;
  /** Plain multi-row insert (keyless tables). */
  insert(n: QualifiedName, columns: Binding[], cells: (string | number | null)[][]): SqlQuery;
  deleteKeys(n: QualifiedName, key: Binding[], keys: (string | number | null)[][]): SqlQuery;
  /** Moves a row to a new key, setting `columns` (key change with unchanged columns). */
  updateByKey(n: QualifiedName, key: Binding[], oldKey: (string | number | null)[], columns: Binding[], cells: (string | number | null)[]): SqlQuery;
  /** Deletes one row equal to `cells` on every given column, NULLs equal (keyless tables). */
  deleteOneRow(n: QualifiedName, columns: Binding[], cells: (string | number | null)[]): SqlQuery;
  /** Deletes every row whose version is older than `v` (truncate in order with the other partitions). */
  deleteOlderThan(n: QualifiedName, v: RowVersion): SqlQuery;
  /** Empties the table in the current transaction. */
  truncate(n: QualifiedName): SqlQuery;

  // --- bookkeeping (the sink's own tables in schema/database `meta`) -------------------------
  metaDdl(meta: string): SqlQuery[];
  /** Rows (topic, partition, next_offset). */
  loadOffsets(meta: string, sink: string, topics: string[]): SqlQuery;
  /** Inserts the first offset row; affects 0 rows when one exists (fence). */
  insertOffset(meta: string, sink: string, topic: string, partition: number, next: string): SqlQuery;
  /** Moves the offset from `expected` to `next`; affects 0 rows when it is not at `expected` (fence). */
  advanceOffset(meta: string, sink: string, topic: string, partition: number, expected: string, next: string): SqlQuery;
  /** Registers a replica table (the row the table lock takes). */
  registerTable(meta: string, tbl: string, schemaJson: string): SqlQuery;
  recordSchema(meta: string, tbl: string, schemaJson: string): SqlQuery;
  /** Rows (schema_json). */
  readTable(meta: string, tbl: string): SqlQuery;
  /**
   * Shared (parallel batches) or exclusive (truncates, key changes) lock on one replica table for
   * this transaction (PostgreSQL: an advisory lock; MySQL: a row lock on the table's `tables` row).
   */
  lockTable(meta: string, tbl: string, exclusive: boolean): SqlQuery;
  /** Rows (key_hash, ts, origin, ord). */
  readTombstones(meta: string, tbl: string, hashes: string[]): SqlQuery;
  writeTombstones(meta: string, tbl: string, items: { hash: string; keyText: string; version: RowVersion }[]): SqlQuery;
  deleteTombstones(meta: string, tbl: string, hashes: string[]): SqlQuery;
  purgeTombstones(meta: string, olderThanUs: bigint): SqlQuery;
  insertConflicts(meta: string, rows: ConflictRow[]): SqlQuery;
  /** Session-level named lock (transaction mode's single active consumer). */
  tryLock(name: string): SqlQuery;
  unlock(name: string): SqlQuery;
  savepoint(name: string): string;
  rollbackTo(name: string): string;
  release(name: string): string;
}

export interface ConflictRow {
  sink: string;
  tbl: string;
  keyText: string;
  kind: string;
  resolution: string;
  local: RowVersion | null;
  localRow: string | null;
  remote: RowVersion;
  remoteRow: string | null;
}

/** A 63-bit signed number from a string, for PostgreSQL advisory lock keys. */
export function lockKey(name: string): bigint {
  // FNV-1a 64, folded to a signed bigint.
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(name, 'utf8')) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return BigInt.asIntN(64, h);
}
