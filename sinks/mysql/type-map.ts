import type { ColumnType, ColumnValue } from '../../schemas/column-types.js';
import type { ColumnSchema, TableSchema } from '../../schemas/table-schema.js';
import type { ReplicaColumn } from '../dialect.js';
import { ValueError } from '../errors.js';

/**
 * Neutral column types → MySQL / MariaDB types, and canonical values → the text MySQL assigns to
 * a column in strict mode. A MySQL source keeps its own type text (`sourceType`) verbatim; a
 * PostgreSQL source goes through the neutral type (table in docs/sinks.md).
 */

/** Strings from a PostgreSQL source compare byte for byte there: keep that with a binary collation. */
export const CROSS_COLLATION = 'CHARACTER SET utf8mb4 COLLATE utf8mb4_bin';

/** InnoDB's largest index key, in bytes; utf8mb4 takes up to 4 bytes a character. */
const MAX_KEY_BYTES = 3072;

export function mysqlTypeFor(t: ColumnType, o: { key: boolean; keyColumns: number }): string {
  const keyChars = Math.max(16, Math.floor(MAX_KEY_BYTES / 4 / Math.max(1, o.keyColumns)) - 8);
  const keyBytes = Math.max(16, Math.floor(MAX_KEY_BYTES / Math.max(1, o.keyColumns)) - 16);
  switch (t.kind) {
    case 'bool':
      return 'tinyint(1)';
    case 'int': {
      const base = t.bits === 8 ? 'tinyint' : t.bits === 16 ? 'smallint' : t.bits === 24 ? 'mediumint' : t.bits === 32 ? 'int' : 'bigint';
      return t.unsigned ? `${base} unsigned` : base;
    }
    case 'float':
      return t.bits === 32 ? 'float' : 'double';
    case 'decimal': {
      const p = t.precision;
      const s = t.scale ?? 0;
      if (p !== undefined && p >= 1 && p <= 65 && s >= 0 && s <= 30 && s <= p) return `decimal(${p},${s})`;
      return 'decimal(65,30)';
    }
    case 'string': {
      if (o.key) return `varchar(${Math.min(t.length ?? keyChars, keyChars)}) ${CROSS_COLLATION}`;
      // PostgreSQL char(n) values carry their padding; MySQL CHAR(n) would strip it: varchar keeps it.
      if (t.length !== undefined && t.length <= 16383) return `varchar(${t.length}) ${CROSS_COLLATION}`;
      return `longtext ${CROSS_COLLATION}`;
    }
    case 'bytes':
      if (o.key) return `varbinary(${Math.min(t.length ?? keyBytes, keyBytes)})`;
      if (t.length !== undefined && t.fixed && t.length <= 255) return `binary(${t.length})`;
      if (t.length !== undefined && t.length <= 65535) return `varbinary(${t.length})`;
      return 'longblob';
    case 'uuid':
      return 'char(36) CHARACTER SET ascii COLLATE ascii_bin';
    case 'json':
      return 'json';
    case 'date':
      return 'date';
    case 'time':
      // MySQL TIME has no zone; a zoned time keeps its offset as text.
      return t.tz ? 'varchar(32) CHARACTER SET ascii COLLATE ascii_bin' : `time(${Math.min(6, t.precision ?? 6)})`;
    case 'timestamp':
      // DATETIME, not TIMESTAMP: TIMESTAMP stops in 2038. Zoned values are stored in UTC.
      return `datetime(${Math.min(6, t.precision ?? 6)})`;
    case 'interval':
      return 'varchar(64) CHARACTER SET ascii COLLATE ascii_bin';
    case 'enum':
      return t.values.length > 0 && t.values.length <= 65535 ? `enum(${t.values.map(sqlString).join(',')}) ${CROSS_COLLATION}` : `varchar(255) ${CROSS_COLLATION}`;
    case 'set':
      return t.values.length > 0 && t.values.length <= 64 ? `set(${t.values.map(sqlString).join(',')}) ${CROSS_COLLATION}` : `longtext ${CROSS_COLLATION}`;
    case 'bit':
      return t.length >= 1 && t.length <= 64 ? `bit(${t.length})` : 'varchar(255) CHARACTER SET ascii COLLATE ascii_bin';
    case 'year':
      return 'year';
    case 'array':
      return 'json';
    case 'unknown':
      return o.key ? `varchar(${keyChars}) ${CROSS_COLLATION}` : `longtext ${CROSS_COLLATION}`;
  }
}

/** A MySQL string literal (quotes and backslashes escaped; the sink's sessions keep backslash escapes on). */
export function sqlString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''").replace(/\u0000/g, '\\0')}'`;
}

export function mysqlColumnType(col: ColumnSchema, source: TableSchema['dialect'], o: { key: boolean; keyColumns: number }): string {
  if (source === 'mysql' && col.sourceType.trim() !== '') return col.sourceType;
  return mysqlTypeFor(col.type, o);
}

export function mysqlDefaultLiteral(col: ColumnSchema, source: TableSchema['dialect']): string | undefined {
  const d = col.defaultExpr?.trim();
  if (!d || /^null$/i.test(d)) return undefined;
  if (/^-?\d+(\.\d+)?$/.test(d)) return d;
  if (/^(true|false)$/i.test(d)) return d.toLowerCase() === 'true' ? '1' : '0';
  const quoted = /^'((?:[^']|'')*)'(::[a-z ]+(\(\d+(,\d+)?\))?)?$/i.exec(d);
  if (quoted) return sqlString(quoted[1]!.replace(/''/g, "'"));
  if (source === 'mysql' && (col.type.kind === 'string' || col.type.kind === 'enum' || col.type.kind === 'set') && !/[()]/.test(d)) return sqlString(d);
  return undefined;
}

const t = (c: ReplicaColumn) => c.type.toLowerCase();
export const isBinaryColumn = (c: ReplicaColumn): boolean => /^(binary|varbinary|tinyblob|blob|mediumblob|longblob)\b/.test(t(c));
export const isBitColumn = (c: ReplicaColumn): boolean => /^bit\b/.test(t(c));
const isIntColumn = (c: ReplicaColumn): boolean => /^(tinyint|smallint|mediumint|int|integer|bigint)\b/.test(t(c));
const isDecimalColumn = (c: ReplicaColumn): boolean => /^(decimal|numeric)\b/.test(t(c));
const isFloatColumn = (c: ReplicaColumn): boolean => /^(float|double|real)\b/.test(t(c));
const isTemporalColumn = (c: ReplicaColumn): boolean => /^(date|datetime|timestamp|time|year)\b/.test(t(c));

const INT = /^-?\d+$/;
const DECIMAL = /^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/;

function bits(v: ColumnValue, from: ColumnType): string {
  if (typeof v === 'boolean') return v ? '1' : '0';
  if (typeof v === 'number' || (typeof v === 'string' && from.kind !== 'bit' && INT.test(v))) return BigInt(v).toString(2);
  if (typeof v === 'string' && /^[01]*$/.test(v)) return v === '' ? '0' : v;
  throw new ValueError(`not a bit string: ${JSON.stringify(v).slice(0, 80)}`);
}

/**
 * Canonical value → the text sent for one replica column (turned into the column's type by
 * {@link mysqlCellExpr}). Values MySQL cannot hold (NaN, infinity, BC dates) are refused here with
 * a clear reason, before MySQL would store something else.
 */
export function mysqlCell(v: ColumnValue, from: ColumnType, to: ReplicaColumn): string | null {
  if (v === null) return null;
  if (isBinaryColumn(to)) {
    if (from.kind === 'bytes' && typeof v === 'string') return v;
    return Buffer.from(typeof v === 'string' ? v : JSON.stringify(v), 'utf8').toString('base64');
  }
  if (isBitColumn(to)) return bits(v, from);
  if (Array.isArray(v)) return JSON.stringify(v);
  if (typeof v === 'boolean') return v ? '1' : '0';
  const s = String(v);
  if (isIntColumn(to) || isDecimalColumn(to) || isFloatColumn(to)) {
    if (s === 'NaN' || s === 'Infinity' || s === '-Infinity' || /^[-+]?inf/i.test(s)) throw new ValueError(`${s} cannot be stored in MySQL ${to.type} column ${to.name}`);
    if (isIntColumn(to) && from.kind !== 'bool' && !INT.test(s)) throw new ValueError(`not an integer for ${to.type} column ${to.name}: ${s.slice(0, 80)}`);
    if (!DECIMAL.test(s)) throw new ValueError(`not a number for ${to.type} column ${to.name}: ${s.slice(0, 80)}`);
    return s;
  }
  if (isTemporalColumn(to) || from.kind === 'date' || from.kind === 'timestamp') {
    if (/infinity/i.test(s)) throw new ValueError(`${s} cannot be stored in MySQL ${to.type} column ${to.name}`);
    if (/BC$/i.test(s) || /^\d{5,}-/.test(s)) throw new ValueError(`date ${s} is outside MySQL's range (years 0-9999) for column ${to.name}`);
    if (from.kind === 'timestamp' || /^\d{4}-\d\d-\d\dT/.test(s)) return s.replace('T', ' ').replace(/Z$/, '').replace(/[+-]\d\d(:?\d\d)?$/, '');
    if (from.kind === 'time' && from.tz && /^time\b/.test(t(to))) return s.replace(/[+-]\d\d(:?\d\d)?$/, '');
    return s;
  }
  return s;
}

/** SQL expression that turns the transported text `ref` into the column's type on assignment. */
export function mysqlCellExpr(ref: string, to: ReplicaColumn): string {
  if (isBinaryColumn(to)) return `FROM_BASE64(${ref})`;
  if (isBitColumn(to)) return `CAST(CONV(${ref}, 2, 10) AS UNSIGNED)`;
  return ref;
}

/**
 * Expression comparing equal to the column's stored value (key lookups). CAST never fails in
 * MySQL (it warns and returns 0), so key values are validated by {@link mysqlCell} first.
 */
export function mysqlKeyExpr(ref: string, to: ReplicaColumn): string {
  const type = t(to);
  if (isBinaryColumn(to) || isBitColumn(to)) return mysqlCellExpr(ref, to);
  if (isIntColumn(to) || type.startsWith('year')) return `CAST(${ref} AS ${type.includes('unsigned') ? 'UNSIGNED' : 'SIGNED'})`;
  const dec = /^(?:decimal|numeric)\((\d+)(?:,(\d+))?\)/.exec(type);
  if (dec) return `CAST(${ref} AS DECIMAL(${dec[1]},${dec[2] ?? 0}))`;
  if (isFloatColumn(to)) return `CAST(${ref} AS DOUBLE)`;
  const frac = /\((\d)\)/.exec(type)?.[1] ?? '0';
  if (type.startsWith('datetime') || type.startsWith('timestamp')) return `CAST(${ref} AS DATETIME(${frac}))`;
  if (type.startsWith('date')) return `CAST(${ref} AS DATE)`;
  if (type.startsWith('time')) return `CAST(${ref} AS TIME(${frac}))`;
  if (to.charset && to.collation && /^[a-z0-9_]+$/i.test(to.charset) && /^[a-z0-9_]+$/i.test(to.collation)) {
    return `CONVERT(${ref} USING ${to.charset}) COLLATE ${to.collation}`;
  }
  return ref;
}
