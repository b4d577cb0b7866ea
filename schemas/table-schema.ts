import { type ColumnType, describeType } from './column-types.js';

/** Where a table lives at its source. `schema` is null for MySQL/MariaDB (no schema level). */
export interface TableId {
  db: string;
  schema: string | null;
  table: string;
}

export interface ColumnSchema {
  name: string;
  type: ColumnType;
  nullable: boolean;
  /**
   * The source's own type text (`numeric(12,2)`, `varchar(40)`, `bigint unsigned`), so a sink of
   * the same dialect can recreate exactly the same type.
   */
  sourceType: string;
  /** Default expression as the source printed it, when known. Informational. */
  defaultExpr?: string | null;
}

/**
 * The shape of a table at one point of the source log. Events carry the schema they were written
 * with, so a consumer never decodes an old row with new columns.
 */
export interface TableSchema {
  id: TableId;
  /** Columns in source ordinal order. */
  columns: ColumnSchema[];
  /**
   * Key columns, in key order: the primary key, or the replica-identity / unique key the source
   * used instead. Empty when the table has no usable key (then events carry no Kafka key).
   */
  primaryKey: string[];
  /** Source dialect, for sinks that recreate source types verbatim. */
  dialect: 'postgres' | 'mysql';
}

/** `db.schema.table` or `db.table`, the Debezium "data collection" name. */
export function tableName(id: TableId): string {
  return id.schema === null ? `${id.db}.${id.table}` : `${id.db}.${id.schema}.${id.table}`;
}

export function sameTable(a: TableId, b: TableId): boolean {
  return a.db === b.db && a.schema === b.schema && a.table === b.table;
}

export function column(schema: TableSchema, name: string): ColumnSchema | undefined {
  return schema.columns.find((c) => c.name === name);
}

/** One structural difference between two versions of a table. */
export type SchemaDelta =
  | { change: 'add-column'; column: ColumnSchema }
  | { change: 'drop-column'; column: ColumnSchema }
  | { change: 'alter-type'; from: ColumnSchema; to: ColumnSchema }
  | { change: 'alter-nullability'; from: ColumnSchema; to: ColumnSchema }
  | { change: 'alter-key'; from: string[]; to: string[] };

/** JSON with object keys sorted at every level: equal values give equal text whatever the key order. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x !== null && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x as Record<string, unknown>).filter(([, y]) => y !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : x,
  );
}

/** Same type, whatever the order its properties were written in. */
export function sameType(a: ColumnType, b: ColumnType): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/**
 * Differences from `prev` to `next`, matched by column name (a rename shows as drop + add: the
 * log does not say a rename happened).
 */
export function diffSchemas(prev: TableSchema, next: TableSchema): SchemaDelta[] {
  const deltas: SchemaDelta[] = [];
  const prevByName = new Map(prev.columns.map((c) => [c.name, c]));
  const nextByName = new Map(next.columns.map((c) => [c.name, c]));
  for (const c of prev.columns) if (!nextByName.has(c.name)) deltas.push({ change: 'drop-column', column: c });
  for (const c of next.columns) {
    const old = prevByName.get(c.name);
    if (!old) {
      deltas.push({ change: 'add-column', column: c });
      continue;
    }
    if (!sameType(old.type, c.type) || old.sourceType !== c.sourceType) deltas.push({ change: 'alter-type', from: old, to: c });
    if (old.nullable !== c.nullable) deltas.push({ change: 'alter-nullability', from: old, to: c });
  }
  if (prev.primaryKey.join('\u0000') !== next.primaryKey.join('\u0000')) {
    deltas.push({ change: 'alter-key', from: prev.primaryKey, to: next.primaryKey });
  }
  return deltas;
}

/** A one-line description of a delta for logs and errors. */
export function describeDelta(d: SchemaDelta): string {
  switch (d.change) {
    case 'add-column':
      return `add column ${d.column.name} ${describeType(d.column.type)}`;
    case 'drop-column':
      return `drop column ${d.column.name}`;
    case 'alter-type':
      return `column ${d.from.name}: ${d.from.sourceType} -> ${d.to.sourceType}`;
    case 'alter-nullability':
      return `column ${d.from.name}: ${d.to.nullable ? 'now nullable' : 'now NOT NULL'}`;
    case 'alter-key':
      return `key (${d.from.join(', ')}) -> (${d.to.join(', ')})`;
  }
}

/** Stable fingerprint of a schema, used to cache per-version work (e.g. prepared statements). */
const fingerprints = new WeakMap<TableSchema, string>();

export function schemaFingerprint(s: TableSchema): string {
  // Once per schema object (schemas are not changed once built): the codec hands every event of
  // one table version the same object, and sinks compare fingerprints per row.
  let f = fingerprints.get(s);
  if (f === undefined) {
    f = canonicalJson([s.id, s.columns.map((c) => [c.name, c.type, c.nullable, c.sourceType]), s.primaryKey]);
    fingerprints.set(s, f);
  }
  return f;
}
