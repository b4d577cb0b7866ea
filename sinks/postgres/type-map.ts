import { type ColumnType, type ColumnValue, describeType } from '../../schemas/column-types.js';
import type { ColumnSchema, TableSchema } from '../../schemas/table-schema.js';
import type { ReplicaColumn } from '../dialect.js';
import { counter } from '../../util/metrics.js';
import { logger } from '../../util/log.js';
import { ValueError } from '../errors.js';

const substituted = counter('cdc_sink_values_substituted_total', 'Values the replica cannot hold that were stored as NULL (MySQL zero dates)', ['column']);
const warned = new Set<string>();

/**
 * Neutral column types → PostgreSQL types, and canonical values → the text PostgreSQL's input
 * functions read. A PostgreSQL source keeps its own type text (`sourceType`) verbatim; a MySQL /
 * MariaDB source goes through the neutral type (table in docs/sinks.md).
 */
export function pgTypeFor(t: ColumnType): string {
  switch (t.kind) {
    case 'bool':
      return 'boolean';
    case 'int':
      if (t.bits === 64) return t.unsigned ? 'numeric(20,0)' : 'bigint';
      if (t.bits === 32) return t.unsigned ? 'bigint' : 'integer';
      if (t.bits === 24) return 'integer';
      if (t.bits === 16) return t.unsigned ? 'integer' : 'smallint';
      return 'smallint';
    case 'float':
      return t.bits === 32 ? 'real' : 'double precision';
    case 'decimal':
      return t.precision !== undefined && t.precision <= 1000 ? `numeric(${t.precision},${t.scale ?? 0})` : 'numeric';
    case 'string':
      // MySQL CHAR(n) values come without trailing spaces; character(n) would pad them back.
      if (t.length === undefined || t.length > 10_485_760) return 'text';
      return `character varying(${t.length})`;
    case 'bytes':
      return 'bytea';
    case 'uuid':
      return 'uuid';
    case 'json':
      // json (not jsonb) keeps the document's text byte for byte.
      return 'json';
    case 'date':
      return 'date';
    case 'time':
      return `time${t.precision !== undefined ? `(${Math.min(6, t.precision)})` : ''} ${t.tz ? 'with' : 'without'} time zone`;
    case 'timestamp':
      return `timestamp${t.precision !== undefined ? `(${Math.min(6, t.precision)})` : ''} ${t.tz ? 'with' : 'without'} time zone`;
    case 'interval':
      return 'interval';
    case 'enum':
    case 'set':
      return 'text';
    case 'bit':
      return `bit(${Math.max(1, t.length)})`;
    case 'year':
      return 'smallint';
    case 'array':
      return `${pgTypeFor(t.element)}${'[]'.repeat(Math.max(1, t.dims ?? 1))}`;
    case 'unknown':
      return 'text';
  }
}

/** Replica type of a source column: verbatim from a PostgreSQL source, else via the neutral type. */
export function pgColumnType(col: ColumnSchema, source: TableSchema['dialect']): string {
  if (source === 'postgres' && col.sourceType.trim() !== '') return col.sourceType;
  return pgTypeFor(col.type);
}

const isArrayType = (type: string): boolean => type.endsWith('[]');
/** bytea, not bytea[] (format_type spells it so); a plain comparison: this runs per cell. */
const isPlainBytea = (type: string): boolean => type === 'bytea';

function arrayElementText(v: Exclude<ColumnValue, null | ColumnValue[]>, el: ColumnType): string {
  if (el.kind === 'bytes' && typeof v === 'string') return `\\x${Buffer.from(v, 'base64').toString('hex')}`;
  if (typeof v === 'boolean') return v ? 't' : 'f';
  return String(v);
}

/** One element of an array literal: quoted, `"` and `\\` escaped (checked first: this runs per cell of every batch). */
export function quoteArrayElement(t: string): string {
  if (t.indexOf('"') < 0 && t.indexOf('\\') < 0) return `"${t}"`;
  return `"${t.replace(/[\\"]/g, '\\$&')}"`;
}

/** A PostgreSQL array literal (`{"a","b"}`, nested for several dimensions). */
export function pgArrayLiteral(v: ColumnValue[], el: ColumnType): string {
  const parts = v.map((x) => {
    if (x === null) return 'NULL';
    if (Array.isArray(x)) return pgArrayLiteral(x, el);
    return quoteArrayElement(arrayElementText(x, el));
  });
  return `{${parts.join(',')}}`;
}

const ZERO_DATE = /^0000-00-00/;

/**
 * Canonical value → the text sent for one replica column (cast by {@link pgCellExpr}).
 * bytea travels as base64 (decoded in SQL); arrays as array literals; MySQL zero dates as NULL.
 */
export function pgCell(v: ColumnValue, from: ColumnType, to: ReplicaColumn): string | null {
  if (v === null) return null;
  if (isPlainBytea(to.type)) {
    if (typeof v !== 'string') throw new ValueError(`expected base64 text for bytea column ${to.name}, got ${typeof v}`);
    return from.kind === 'bytes' ? v : Buffer.from(v, 'utf8').toString('base64');
  }
  if (Array.isArray(v)) {
    if (isArrayType(to.type)) return pgArrayLiteral(v, from.kind === 'array' ? from.element : from);
    return JSON.stringify(v);
  }
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new ValueError(`non-finite number for column ${to.name}`);
    return String(v);
  }
  if ((from.kind === 'date' || from.kind === 'timestamp') && ZERO_DATE.test(v)) {
    // PostgreSQL has no zero date; NULL as Debezium does, counted and logged once per column.
    substituted.inc({ column: to.name });
    if (!warned.has(to.name)) {
      warned.add(to.name);
      logger().warn({ column: to.name, value: v }, 'MySQL zero date stored as NULL (PostgreSQL has no zero date)');
    }
    return null;
  }
  if (from.kind === 'set' && isArrayType(to.type)) return pgArrayLiteral(v === '' ? [] : v.split(','), { kind: 'string' });
  return v;
}

/**
 * The type to cast transported text to: the column's type without its modifier. An explicit cast
 * to `varchar(40)`, `char(3)` or `bit(4)` silently truncates or pads (SQL's explicit-cast rule),
 * while the assignment to the column refuses a value that does not fit; so the cast stops at the
 * base type and the assignment does the checking.
 */
export function pgCastType(type: string): string {
  const dims = /((\[\d*\])*)$/.exec(type)?.[1] ?? '';
  let base = type.slice(0, type.length - dims.length).replace(/\(\s*\d+(\s*,\s*-?\d+)?\s*\)/g, '').replace(/\s+/g, ' ').trim();
  if (base === 'character' || base === 'char' || base === 'bpchar') base = 'text';
  if (base === 'bit') base = 'bit varying';
  return `${base}${dims}`;
}

/** SQL expression that turns the transported text `ref` into the column's type. */
export function pgCellExpr(ref: string, to: ReplicaColumn): string {
  if (isPlainBytea(to.type)) return `decode(${ref}, 'base64')`;
  return `${ref}::${pgCastType(to.type)}`;
}

/** A literal default, when the source default is a plain constant (numbers, quoted strings, booleans). */
export function pgDefaultLiteral(col: ColumnSchema, source: TableSchema['dialect']): string | undefined {
  const d = col.defaultExpr?.trim();
  if (!d) return undefined;
  if (/^-?\d+(\.\d+)?$/.test(d)) return d;
  if (/^(true|false)$/i.test(d)) return d.toLowerCase();
  // PostgreSQL prints 'abc'::text; MySQL prints the bare value or 'abc'.
  const quoted = /^'((?:[^']|'')*)'(::[a-z ]+(\(\d+(,\d+)?\))?)?$/i.exec(d);
  if (quoted) return `'${quoted[1]!}'`;
  if (source === 'mysql' && col.type.kind !== 'string' && col.type.kind !== 'enum') return undefined;
  if (source === 'mysql' && !/[()]/.test(d)) return `'${d.replace(/'/g, "''")}'`;
  return undefined;
}

export function describePgMismatch(from: ColumnType, to: ReplicaColumn): string {
  return `${describeType(from)} value for ${to.type} column ${to.name}`;
}
