import type { ColumnType } from '../column-types.js';
import type { ColumnSchema, TableSchema } from '../table-schema.js';
import { type AvroSchema, type ColumnConverter, columnConverter } from './columns.js';
import { avroName, avroNamespace } from './names.js';

/**
 * Avro schemas derived from a table's columns (Debezium's layout):
 *
 * - key     `<ns>.Key`       the key columns, required fields
 * - value   `<ns>.Envelope`  before / after (`<ns>.Value`, the row), source, op, ts_ms, transaction
 *
 * where `<ns>` is the topic name made a valid Avro namespace (`<prefix>.<source>.<db>[.<schema>].<table>`).
 * Row fields are all nullable with default null, whatever the column's nullability: adding any
 * column, dropping one and changing nullability are then always BACKWARD compatible, and NOT NULL
 * lives in the metadata below rather than in the Avro type.
 *
 * Metadata (custom Avro properties, kept by Avro parsers and schema registries):
 * - `cdc.table` on Key and Value: `{db, schema, table, primaryKey, dialect}`
 * - `cdc.column` on each column field: `{name, type, nullable, sourceType, defaultExpr?}`, the
 *   ColumnSchema as written, so a sink can recreate the same type and a decoder can rebuild the
 *   TableSchema without any header.
 * - `__cdc` field (optional record `cdc.RowMeta`): `raw` = canonical JSON text of values the
 *   Avro type cannot hold exactly ('NaN' numerics, 'infinity' dates, MySQL zero dates, unchanged
 *   TOAST placeholders in non-text columns); `absent` = fields the row does not have (a delete's
 *   `before` with only the key). Null on almost every row.
 */

export const META_TABLE = 'cdc.table';
export const META_COLUMN = 'cdc.column';
export const ROW_META_FIELD = '__cdc';

export interface TableMeta {
  db: string;
  schema: string | null;
  table: string;
  primaryKey: string[];
  dialect: 'postgres' | 'mysql';
}

export interface ColumnMeta {
  name: string;
  type: ColumnType;
  nullable: boolean;
  sourceType: string;
  defaultExpr?: string | null;
}

/** One column's place in a row record. */
export interface FieldPlan {
  column: string;
  field: string;
  conv: ColumnConverter;
}

export interface DerivedSchemas {
  namespace: string;
  /** null for a table without key columns (its events carry no Kafka key). */
  key: AvroSchema | null;
  value: AvroSchema;
  keyFields: FieldPlan[];
  valueFields: FieldPlan[];
}

const ROW_META: AvroSchema = {
  type: 'record',
  name: 'RowMeta',
  namespace: 'cdc',
  fields: [
    { name: 'raw', type: { type: 'map', values: 'string' }, default: {} },
    { name: 'absent', type: { type: 'array', items: 'string' }, default: [] },
  ],
};

const opt = (t: AvroSchema): AvroSchema => ['null', t];

/** Debezium's `source` block with our fields; one fixed record shared by every topic. */
export const SOURCE_SCHEMA: AvroSchema = {
  type: 'record',
  name: 'Source',
  namespace: 'cdc',
  fields: [
    { name: 'version', type: 'string' },
    { name: 'connector', type: 'string' },
    { name: 'name', type: 'string' },
    { name: 'ts_ms', type: 'long' },
    { name: 'ts_us', type: opt('long'), default: null },
    { name: 'snapshot', type: 'string' },
    { name: 'db', type: 'string' },
    { name: 'schema', type: opt('string'), default: null },
    { name: 'table', type: 'string' },
    { name: 'txId', type: opt('string'), default: null },
    { name: 'lsn', type: opt('string'), default: null },
    { name: 'commit_lsn', type: opt('string'), default: null },
    { name: 'file', type: opt('string'), default: null },
    { name: 'pos', type: opt('long'), default: null },
    { name: 'row', type: opt('int'), default: null },
    { name: 'gtid', type: opt('string'), default: null },
    { name: 'server_id', type: opt('long'), default: null },
    { name: 'origin', type: opt('string'), default: null },
  ],
};

/** Debezium's per-event `transaction` block. */
export const TRANSACTION_BLOCK_SCHEMA: AvroSchema = {
  type: 'record',
  name: 'TransactionBlock',
  namespace: 'cdc',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'total_order', type: 'long' },
    { name: 'data_collection_order', type: 'long' },
  ],
};

/**
 * The value with object keys sorted at every level (undefined dropped): the same column type
 * written with its properties in another order (a snapshot reader vs the stream decoder) must
 * give the same schema text, not a spurious new version.
 */
function sorted<T>(v: T): T {
  if (Array.isArray(v)) return v.map(sorted) as T;
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(
    Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, x]) => [k, sorted(x)]),
  ) as T;
}

function columnMeta(c: ColumnSchema): ColumnMeta {
  return {
    name: c.name,
    type: sorted(c.type),
    nullable: c.nullable,
    sourceType: c.sourceType,
    ...(c.defaultExpr === undefined ? {} : { defaultExpr: c.defaultExpr }),
  };
}

function tableMeta(s: TableSchema): TableMeta {
  return { db: s.id.db, schema: s.id.schema, table: s.id.table, primaryKey: s.primaryKey, dialect: s.dialect };
}

function plans(columns: ColumnSchema[], dialect: 'postgres' | 'mysql', namespace: string): FieldPlan[] {
  return columns.map((c) => {
    const field = avroName(c.name);
    return { column: c.name, field, conv: columnConverter(c.type, dialect, field, namespace) };
  });
}

/** Derives the key and value schemas of a table for a topic. Deterministic: same input, same JSON text. */
export function deriveSchemas(s: TableSchema, topic: string): DerivedSchemas {
  const namespace = avroNamespace(topic);
  const valueFields = plans(s.columns, s.dialect, namespace);
  const byName = new Map(s.columns.map((c) => [c.name, c]));
  const keyColumns = s.primaryKey.map((k) => byName.get(k)).filter((c): c is ColumnSchema => c !== undefined);
  const keyFields = plans(keyColumns, s.dialect, namespace);

  const valueRecord: AvroSchema = {
    type: 'record',
    name: 'Value',
    namespace,
    [META_TABLE]: tableMeta(s),
    fields: [
      ...s.columns.map((c, i) => ({ name: valueFields[i]!.field, type: opt(valueFields[i]!.conv.avro), default: null, [META_COLUMN]: columnMeta(c) })),
      { name: ROW_META_FIELD, type: opt(ROW_META), default: null },
    ],
  };
  const value: AvroSchema = {
    type: 'record',
    name: 'Envelope',
    namespace,
    fields: [
      { name: 'before', type: opt(valueRecord), default: null },
      { name: 'after', type: opt(`${namespace}.Value`), default: null },
      { name: 'source', type: SOURCE_SCHEMA },
      { name: 'op', type: 'string' },
      { name: 'ts_ms', type: 'long' },
      { name: 'transaction', type: opt(TRANSACTION_BLOCK_SCHEMA), default: null },
    ],
  };
  const key: AvroSchema | null =
    keyColumns.length === 0 || keyColumns.length !== s.primaryKey.length
      ? null
      : {
          type: 'record',
          name: 'Key',
          namespace,
          [META_TABLE]: tableMeta(s),
          fields: [
            ...keyColumns.map((c, i) => ({ name: keyFields[i]!.field, type: keyFields[i]!.conv.avro, default: keyFields[i]!.conv.zeroJson, [META_COLUMN]: columnMeta(c) })),
            { name: ROW_META_FIELD, type: opt(ROW_META), default: null },
          ],
        };
  return { namespace, key, value, keyFields, valueFields };
}

type Json = { [k: string]: unknown };

/** The row record (`<ns>.Value`) inside an envelope schema, or undefined when it is not one of ours. */
export function valueRecordOf(envelope: unknown): Json | undefined {
  const env = envelope as Json;
  if (env?.type !== 'record' || !Array.isArray(env.fields)) return undefined;
  const before = (env.fields as Json[]).find((f) => f.name === 'before');
  const union = before?.type;
  if (!Array.isArray(union)) return undefined;
  const rec = union.find((t) => typeof t === 'object' && t !== null && (t as Json).type === 'record') as Json | undefined;
  return rec && rec[META_TABLE] !== undefined ? rec : undefined;
}

/**
 * Rebuilds the TableSchema and the field plans from a row record (Value or Key) written by
 * {@link deriveSchemas}. Returns undefined when the record carries no metadata of ours.
 */
export function readRowRecord(rec: Json): { schema: TableSchema; fields: FieldPlan[]; namespace: string } | undefined {
  const t = rec[META_TABLE] as TableMeta | undefined;
  if (!t || !Array.isArray(rec.fields)) return undefined;
  const namespace = String(rec.namespace ?? '');
  const columns: ColumnSchema[] = [];
  const fields: FieldPlan[] = [];
  for (const f of rec.fields as Json[]) {
    const m = f[META_COLUMN] as ColumnMeta | undefined;
    if (!m) continue;
    const field = String(f.name);
    columns.push({ name: m.name, type: m.type, nullable: m.nullable, sourceType: m.sourceType, ...(m.defaultExpr === undefined ? {} : { defaultExpr: m.defaultExpr }) });
    fields.push({ column: m.name, field, conv: columnConverter(m.type, t.dialect, field, namespace) });
  }
  return {
    schema: { id: { db: t.db, schema: t.schema, table: t.table }, columns, primaryKey: t.primaryKey, dialect: t.dialect },
    fields,
    namespace,
  };
}
