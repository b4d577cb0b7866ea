import type { ColumnType, ColumnValue } from '../../schemas/column-types.js';
import type { ColumnSchema } from '../../schemas/table-schema.js';
import { CdcError } from '../../schemas/errors.js';
import { type Collations, textDecoder } from './charset.js';
import { decimalBinarySize, decodeDecimal } from './decimal.js';
import { type MapColumn, T } from './decode.js';
import { jsonBinaryToText } from './json-binary.js';

/**
 * MySQL/MariaDB column types to the neutral types of schemas/column-types.ts, both from a
 * TABLE_MAP event (what a row was written with) and from information_schema (schema history,
 * snapshots), plus one value decoder per column that turns row-image bytes into the canonical
 * value. Decoders are built once per TABLE_MAP and reused for every row.
 */

/** Mutable read cursor shared by the value decoders of one row image (no per-value allocation). */
export interface Cursor {
  buf: Buffer;
  pos: number;
}

export type ValueDecoder = (c: Cursor) => ColumnValue;

/** How a TABLE_MAP column decodes: its neutral schema and its value decoder. */
export interface ColumnCodec {
  schema: ColumnSchema;
  decode: ValueDecoder;
}

const GEOMETRY_NAMES = ['geometry', 'point', 'linestring', 'polygon', 'multipoint', 'multilinestring', 'multipolygon', 'geometrycollection'];
const BLOB_NAMES = ['', 'tinyblob', 'blob', 'mediumblob', 'longblob'];
const TEXT_NAMES = ['', 'tinytext', 'text', 'mediumtext', 'longtext'];

function fail(col: string, what: string): never {
  throw new CdcError(`column ${col}: ${what}`, { code: 'BINLOG_DECODE' });
}

function need(c: Cursor, n: number, col: string): void {
  if (c.pos + n > c.buf.length) fail(col, `row image truncated (needs ${n} bytes at ${c.pos} of ${c.buf.length})`);
}

const pad2 = (n: number) => (n < 10 ? `0${n}` : `${n}`);
const pad4 = (n: number) => String(n).padStart(4, '0');

/** `fsp` fractional digits of a microsecond count, with the dot; '' when fsp is 0. */
function fraction(micros: number, fsp: number): string {
  if (fsp <= 0) return '';
  return `.${String(micros).padStart(6, '0').slice(0, fsp)}`;
}

/** Bytes of the fractional part of TIME2/DATETIME2/TIMESTAMP2 for `fsp` digits. */
function fracBytes(fsp: number): number {
  return (fsp + 1) >> 1;
}

function readFracMicros(buf: Buffer, pos: number, fsp: number): number {
  switch (fracBytes(fsp)) {
    case 0:
      return 0;
    case 1:
      return buf[pos]! * 10_000;
    case 2:
      return buf.readUInt16BE(pos) * 100;
    default:
      return buf.readUIntBE(pos, 3);
  }
}

/** Shortest decimal that reads back as the same float32 (what MySQL prints for FLOAT). */
export function float32Value(v: number): number {
  if (!Number.isFinite(v)) return v;
  for (let p = 1; p <= 9; p++) {
    const s = Number(v.toPrecision(p));
    if (Math.fround(s) === v) return s;
  }
  return v;
}

/** TIME2 packed value (sql-common my_time.cc my_time_packed_from_binary) to 'HH:MM:SS[.f]'. */
export function decodeTime2(buf: Buffer, pos: number, fsp: number): string {
  const TIMEF_INT_OFS = 0x800000;
  let packed: number;
  switch (fsp) {
    case 1:
    case 2: {
      let intpart = buf.readUIntBE(pos, 3) - TIMEF_INT_OFS;
      let frac = buf[pos + 3]!;
      if (intpart < 0 && frac) {
        // Negative values store the fraction in reverse order so the bytes sort.
        intpart++;
        frac -= 0x100;
      }
      packed = intpart * 0x1000000 + frac * 10_000;
      break;
    }
    case 3:
    case 4: {
      let intpart = buf.readUIntBE(pos, 3) - TIMEF_INT_OFS;
      let frac = buf.readUInt16BE(pos + 3);
      if (intpart < 0 && frac) {
        intpart++;
        frac -= 0x10000;
      }
      packed = intpart * 0x1000000 + frac * 100;
      break;
    }
    case 5:
    case 6:
      packed = buf.readUIntBE(pos, 6) - 0x800000000000;
      break;
    default:
      packed = (buf.readUIntBE(pos, 3) - TIMEF_INT_OFS) * 0x1000000;
  }
  const neg = packed < 0;
  const abs = Math.abs(packed);
  const hms = Math.floor(abs / 0x1000000);
  const micros = abs % 0x1000000;
  const hour = Math.floor(hms / 4096) % 1024;
  const minute = Math.floor(hms / 64) % 64;
  const second = hms % 64;
  return `${neg ? '-' : ''}${pad2(hour)}:${pad2(minute)}:${pad2(second)}${fraction(micros, fsp)}`;
}

/** DATETIME2: 5 bytes big-endian (year*13+month, day, hour, minute, second bit fields) + fraction. */
export function decodeDatetime2(buf: Buffer, pos: number, fsp: number): string {
  const intpart = buf.readUIntBE(pos, 5) - 0x8000000000;
  const micros = readFracMicros(buf, pos + 5, fsp);
  const ymd = Math.floor(intpart / 2 ** 17);
  const hms = intpart % 2 ** 17;
  const ym = Math.floor(ymd / 32);
  const day = ymd % 32;
  const year = Math.floor(ym / 13);
  const month = ym % 13;
  const second = hms % 64;
  const minute = Math.floor(hms / 64) % 64;
  const hour = Math.floor(hms / 4096);
  return `${pad4(year)}-${pad2(month)}-${pad2(day)}T${pad2(hour)}:${pad2(minute)}:${pad2(second)}${fraction(micros, fsp)}`;
}

/** TIMESTAMP2: seconds since epoch (4 bytes big-endian) + fraction, printed in UTC with 'Z'. */
export function decodeTimestamp2(buf: Buffer, pos: number, fsp: number): string {
  const seconds = buf.readUInt32BE(pos);
  const micros = readFracMicros(buf, pos + 4, fsp);
  return formatEpoch(seconds, micros, fsp);
}

function formatEpoch(seconds: number, micros: number, fsp: number): string {
  // 0 is MySQL's zero timestamp '0000-00-00 00:00:00', kept as written.
  if (seconds === 0 && micros === 0) return `0000-00-00T00:00:00${fraction(0, fsp)}Z`;
  const d = new Date(seconds * 1000);
  return `${pad4(d.getUTCFullYear())}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}T${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}${fraction(micros, fsp)}Z`;
}

export function decodeDate(v: number): string {
  return `${pad4(v >> 9)}-${pad2((v >> 5) & 15)}-${pad2(v & 31)}`;
}

function bitString(buf: Buffer, pos: number, nbytes: number, bits: number): string {
  let s = '';
  for (let i = 0; i < nbytes; i++) s += buf[pos + i]!.toString(2).padStart(8, '0');
  return s.slice(s.length - bits);
}

function quoteList(values: string[]): string {
  return values.map((v) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`).join(',');
}

/**
 * The neutral schema and the value decoder of one TABLE_MAP column. `name` is the column's name
 * (from FULL metadata, or `col_<n>` when absent).
 */
export function binlogColumn(col: MapColumn, name: string, collations: Collations): ColumnCodec {
  const unsigned = col.unsigned === true;
  const u = unsigned ? ' unsigned' : '';
  const nullable = col.nullable;
  const mk = (type: ColumnType, sourceType: string, decode: ValueDecoder): ColumnCodec => ({ schema: { name, type, nullable, sourceType }, decode });

  switch (col.realType) {
    case T.TINY:
      return mk({ kind: 'int', bits: 8, ...(unsigned ? { unsigned } : {}) }, `tinyint${u}`, (c) => {
        need(c, 1, name);
        return unsigned ? c.buf[c.pos++]! : c.buf.readInt8(c.pos++);
      });
    case T.SHORT:
      return mk({ kind: 'int', bits: 16, ...(unsigned ? { unsigned } : {}) }, `smallint${u}`, (c) => {
        need(c, 2, name);
        const v = unsigned ? c.buf.readUInt16LE(c.pos) : c.buf.readInt16LE(c.pos);
        c.pos += 2;
        return v;
      });
    case T.INT24:
      return mk({ kind: 'int', bits: 24, ...(unsigned ? { unsigned } : {}) }, `mediumint${u}`, (c) => {
        need(c, 3, name);
        const v = unsigned ? c.buf.readUIntLE(c.pos, 3) : c.buf.readIntLE(c.pos, 3);
        c.pos += 3;
        return v;
      });
    case T.LONG:
      return mk({ kind: 'int', bits: 32, ...(unsigned ? { unsigned } : {}) }, `int${u}`, (c) => {
        need(c, 4, name);
        const v = unsigned ? c.buf.readUInt32LE(c.pos) : c.buf.readInt32LE(c.pos);
        c.pos += 4;
        return v;
      });
    case T.LONGLONG:
      // 64-bit integers are decimal strings (canonical form): exact beyond 2^53.
      return mk({ kind: 'int', bits: 64, ...(unsigned ? { unsigned } : {}) }, `bigint${u}`, (c) => {
        need(c, 8, name);
        const v = unsigned ? c.buf.readBigUInt64LE(c.pos) : c.buf.readBigInt64LE(c.pos);
        c.pos += 8;
        return v.toString();
      });
    case T.FLOAT:
      return mk({ kind: 'float', bits: 32 }, `float${u}`, (c) => {
        need(c, 4, name);
        const v = c.buf.readFloatLE(c.pos);
        c.pos += 4;
        return float32Value(v);
      });
    case T.DOUBLE:
      return mk({ kind: 'float', bits: 64 }, `double${u}`, (c) => {
        need(c, 8, name);
        const v = c.buf.readDoubleLE(c.pos);
        c.pos += 8;
        return v;
      });
    case T.NEWDECIMAL: {
      const p = col.meta.precision ?? 10;
      const s = col.meta.scale ?? 0;
      const size = decimalBinarySize(p, s);
      return mk({ kind: 'decimal', precision: p, scale: s }, `decimal(${p},${s})${u}`, (c) => {
        need(c, size, name);
        const { value } = decodeDecimal(c.buf, c.pos, p, s);
        c.pos += size;
        return value;
      });
    }
    case T.DATE:
    case T.NEWDATE:
      return mk({ kind: 'date' }, 'date', (c) => {
        need(c, 3, name);
        const v = c.buf.readUIntLE(c.pos, 3);
        c.pos += 3;
        return decodeDate(v);
      });
    case T.TIME:
      // Pre-5.6 TIME: 3-byte signed integer HHMMSS.
      return mk({ kind: 'time', precision: 0 }, 'time', (c) => {
        need(c, 3, name);
        const v = c.buf.readIntLE(c.pos, 3);
        c.pos += 3;
        const a = Math.abs(v);
        return `${v < 0 ? '-' : ''}${pad2(Math.floor(a / 10000))}:${pad2(Math.floor(a / 100) % 100)}:${pad2(a % 100)}`;
      });
    case T.TIME2: {
      const fsp = col.meta.fsp ?? 0;
      const size = 3 + fracBytes(fsp);
      return mk({ kind: 'time', precision: fsp }, fsp > 0 ? `time(${fsp})` : 'time', (c) => {
        need(c, size, name);
        const v = decodeTime2(c.buf, c.pos, fsp);
        c.pos += size;
        return v;
      });
    }
    case T.DATETIME:
      // Pre-5.6 DATETIME: 8-byte integer YYYYMMDDhhmmss.
      return mk({ kind: 'timestamp', precision: 0, tz: false }, 'datetime', (c) => {
        need(c, 8, name);
        const s = c.buf.readBigUInt64LE(c.pos).toString().padStart(14, '0');
        c.pos += 8;
        return `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}T${s.slice(8, 10)}:${s.slice(10, 12)}:${s.slice(12, 14)}`;
      });
    case T.DATETIME2: {
      const fsp = col.meta.fsp ?? 0;
      const size = 5 + fracBytes(fsp);
      return mk({ kind: 'timestamp', precision: fsp, tz: false }, fsp > 0 ? `datetime(${fsp})` : 'datetime', (c) => {
        need(c, size, name);
        const v = decodeDatetime2(c.buf, c.pos, fsp);
        c.pos += size;
        return v;
      });
    }
    case T.TIMESTAMP:
      return mk({ kind: 'timestamp', precision: 0, tz: true }, 'timestamp', (c) => {
        need(c, 4, name);
        const v = c.buf.readUInt32LE(c.pos);
        c.pos += 4;
        return formatEpoch(v, 0, 0);
      });
    case T.TIMESTAMP2: {
      const fsp = col.meta.fsp ?? 0;
      const size = 4 + fracBytes(fsp);
      return mk({ kind: 'timestamp', precision: fsp, tz: true }, fsp > 0 ? `timestamp(${fsp})` : 'timestamp', (c) => {
        need(c, size, name);
        const v = decodeTimestamp2(c.buf, c.pos, fsp);
        c.pos += size;
        return v;
      });
    }
    case T.YEAR:
      return mk({ kind: 'year' }, 'year', (c) => {
        need(c, 1, name);
        const v = c.buf[c.pos++]!;
        return v === 0 ? 0 : 1900 + v;
      });
    case T.BIT: {
      const bits = col.meta.bits ?? 1;
      const nbytes = (bits + 7) >> 3;
      return mk({ kind: 'bit', length: bits }, `bit(${bits})`, (c) => {
        need(c, nbytes, name);
        const v = bitString(c.buf, c.pos, nbytes, bits);
        c.pos += nbytes;
        return v;
      });
    }
    case T.ENUM: {
      const cs = collations.charset(col.collation ?? 45);
      const dec = textDecoder(cs.name === 'binary' ? 'latin1' : cs.name);
      const labels = (col.enumValues ?? []).map((b) => dec(b, 0, b.length));
      const size = col.meta.packLength ?? 1;
      const hasLabels = col.enumValues !== undefined;
      return mk({ kind: 'enum', values: labels }, `enum(${quoteList(labels)})`, (c) => {
        need(c, size, name);
        const idx = c.buf.readUIntLE(c.pos, size);
        c.pos += size;
        // Index 0 is the '' MySQL stores for an invalid value in non-strict mode.
        if (idx === 0) return '';
        if (!hasLabels) return String(idx);
        const label = labels[idx - 1];
        if (label === undefined) fail(name, `enum index ${idx} beyond its ${labels.length} values`);
        return label;
      });
    }
    case T.SET: {
      const cs = collations.charset(col.collation ?? 45);
      const dec = textDecoder(cs.name === 'binary' ? 'latin1' : cs.name);
      const members = (col.setValues ?? []).map((b) => dec(b, 0, b.length));
      const size = col.meta.packLength ?? 1;
      const hasLabels = col.setValues !== undefined;
      return mk({ kind: 'set', values: members }, `set(${quoteList(members)})`, (c) => {
        need(c, size, name);
        const out: string[] = [];
        for (let byte = 0; byte < size; byte++) {
          const b = c.buf[c.pos + byte]!;
          for (let bit = 0; bit < 8; bit++) {
            if (b & (1 << bit)) {
              const i = byte * 8 + bit;
              out.push(hasLabels ? (members[i] ?? fail(name, `set bit ${i} beyond its ${members.length} members`)) : String(i));
            }
          }
        }
        c.pos += size;
        return out.join(',');
      });
    }
    case T.VARCHAR:
    case T.VAR_STRING:
    case T.STRING: {
      const fixed = col.realType === T.STRING;
      const maxBytes = col.meta.maxLength ?? 0;
      const lenBytes = maxBytes < 256 ? 1 : 2;
      const cs = collations.charset(col.collation ?? 63);
      if (cs.name === 'binary') {
        // BINARY(n) loses its trailing zero bytes in the row image; put them back.
        return mk({ kind: 'bytes', length: maxBytes, fixed }, `${fixed ? 'binary' : 'varbinary'}(${maxBytes})`, (c) => {
          need(c, lenBytes, name);
          const len = lenBytes === 1 ? c.buf[c.pos]! : c.buf.readUInt16LE(c.pos);
          c.pos += lenBytes;
          need(c, len, name);
          let b = c.buf.subarray(c.pos, c.pos + len);
          c.pos += len;
          if (fixed && len < maxBytes) b = Buffer.concat([b, Buffer.alloc(maxBytes - len)]);
          return b.toString('base64');
        });
      }
      const dec = textDecoder(cs.name);
      const chars = Math.floor(maxBytes / cs.maxLen);
      return mk({ kind: 'string', length: chars, ...(fixed ? { fixed } : {}), charset: cs.name }, `${fixed ? 'char' : 'varchar'}(${chars})`, (c) => {
        need(c, lenBytes, name);
        const len = lenBytes === 1 ? c.buf[c.pos]! : c.buf.readUInt16LE(c.pos);
        c.pos += lenBytes;
        need(c, len, name);
        const v = dec(c.buf, c.pos, c.pos + len);
        c.pos += len;
        return v;
      });
    }
    case T.BLOB:
    case T.TINY_BLOB:
    case T.MEDIUM_BLOB:
    case T.LONG_BLOB: {
      const lb = col.meta.lengthBytes ?? 2;
      const cs = collations.charset(col.collation ?? 63);
      const readLen = (c: Cursor) => {
        need(c, lb, name);
        const len = c.buf.readUIntLE(c.pos, lb);
        c.pos += lb;
        need(c, len, name);
        return len;
      };
      if (cs.name === 'binary') {
        return mk({ kind: 'bytes' }, BLOB_NAMES[lb] ?? 'longblob', (c) => {
          const len = readLen(c);
          const v = c.buf.toString('base64', c.pos, c.pos + len);
          c.pos += len;
          return v;
        });
      }
      const dec = textDecoder(cs.name);
      return mk({ kind: 'string', charset: cs.name }, TEXT_NAMES[lb] ?? 'longtext', (c) => {
        const len = readLen(c);
        const v = dec(c.buf, c.pos, c.pos + len);
        c.pos += len;
        return v;
      });
    }
    case T.JSON: {
      // MySQL 8 binary JSON; MariaDB never logs this type (its JSON is LONGTEXT).
      const lb = col.meta.lengthBytes ?? 4;
      return mk({ kind: 'json' }, 'json', (c) => {
        need(c, lb, name);
        const len = c.buf.readUIntLE(c.pos, lb);
        c.pos += lb;
        need(c, len, name);
        const v = jsonBinaryToText(c.buf.subarray(c.pos, c.pos + len));
        c.pos += len;
        return v;
      });
    }
    case T.GEOMETRY: {
      const lb = col.meta.lengthBytes ?? 4;
      // Internal format (4-byte SRID + WKB), base64: lossless, and sinks of the same dialect can
      // write it back with ST_GeomFromWKB.
      return mk({ kind: 'bytes' }, GEOMETRY_NAMES[col.geometryType ?? 0] ?? 'geometry', (c) => {
        need(c, lb, name);
        const len = c.buf.readUIntLE(c.pos, lb);
        c.pos += lb;
        need(c, len, name);
        const v = c.buf.toString('base64', c.pos, c.pos + len);
        c.pos += len;
        return v;
      });
    }
    case T.MARIA_BLOB_COMPRESSED:
    case T.MARIA_VARCHAR_COMPRESSED:
      fail(name, 'MariaDB compressed columns (COMPRESSED attribute) are not supported: remove the attribute');
    // falls through (fail never returns)
    default:
      fail(name, `binlog column type ${col.realType} is not supported by the MySQL source`);
  }
}

/** Fallback name for a column when the TABLE_MAP carries no names (binlog_row_metadata != FULL). */
export function anonymousColumnName(index: number): string {
  return `col_${index + 1}`;
}

// ---------------------------------------------------------------------------------------------
// information_schema

/** One row of information_schema.COLUMNS (plus MariaDB's json_valid check), as the history keeps it. */
export interface InfoColumn {
  name: string;
  dataType: string;
  columnType: string;
  nullable: boolean;
  defaultExpr: string | null;
  charset: string | null;
  /** CHARACTER_MAXIMUM_LENGTH / NUMERIC_PRECISION / NUMERIC_SCALE / DATETIME_PRECISION. */
  charMaxLength: number | null;
  numericPrecision: number | null;
  numericScale: number | null;
  datetimePrecision: number | null;
  /** MariaDB: LONGTEXT with CHECK (json_valid(col)), i.e. declared JSON. */
  isJson: boolean;
}

/** Values inside enum('a','b') / set(...) as MySQL prints them in COLUMN_TYPE. */
export function parseEnumValues(columnType: string): string[] {
  const m = /^(?:enum|set)\((.*)\)$/is.exec(columnType.trim());
  if (!m) return [];
  const out: string[] = [];
  const body = m[1]!;
  let i = 0;
  while (i < body.length) {
    if (body[i] !== "'") {
      i++;
      continue;
    }
    let s = '';
    i++;
    while (i < body.length) {
      const ch = body[i]!;
      if (ch === "'" && body[i + 1] === "'") {
        s += "'";
        i += 2;
      } else if (ch === '\\' && i + 1 < body.length) {
        s += body[i + 1];
        i += 2;
      } else if (ch === "'") {
        i++;
        break;
      } else {
        s += ch;
        i++;
      }
    }
    out.push(s);
  }
  return out;
}

/** Neutral type of an information_schema column (same result as binlogColumn for the same column). */
export function infoColumnType(c: InfoColumn): ColumnType {
  const unsigned = /\bunsigned\b/i.test(c.columnType);
  const uns = unsigned ? { unsigned } : {};
  const fsp = c.datetimePrecision ?? 0;
  switch (c.dataType.toLowerCase()) {
    case 'tinyint':
      return { kind: 'int', bits: 8, ...uns };
    case 'smallint':
      return { kind: 'int', bits: 16, ...uns };
    case 'mediumint':
      return { kind: 'int', bits: 24, ...uns };
    case 'int':
    case 'integer':
      return { kind: 'int', bits: 32, ...uns };
    case 'bigint':
      return { kind: 'int', bits: 64, ...uns };
    case 'float':
      return { kind: 'float', bits: 32 };
    case 'double':
    case 'real':
      return { kind: 'float', bits: 64 };
    case 'decimal':
    case 'numeric':
      return { kind: 'decimal', precision: c.numericPrecision ?? 10, scale: c.numericScale ?? 0 };
    case 'date':
      return { kind: 'date' };
    case 'time':
      return { kind: 'time', precision: fsp };
    case 'datetime':
      return { kind: 'timestamp', precision: fsp, tz: false };
    case 'timestamp':
      return { kind: 'timestamp', precision: fsp, tz: true };
    case 'year':
      return { kind: 'year' };
    case 'bit':
      return { kind: 'bit', length: c.numericPrecision ?? 1 };
    case 'enum':
      return { kind: 'enum', values: parseEnumValues(c.columnType) };
    case 'set':
      return { kind: 'set', values: parseEnumValues(c.columnType) };
    case 'char':
    case 'varchar': {
      const fixed = c.dataType.toLowerCase() === 'char';
      return { kind: 'string', length: c.charMaxLength ?? 0, ...(fixed ? { fixed } : {}), charset: c.charset ?? 'utf8mb4' };
    }
    case 'binary':
    case 'varbinary': {
      const fixed = c.dataType.toLowerCase() === 'binary';
      return { kind: 'bytes', length: c.charMaxLength ?? 0, fixed };
    }
    case 'tinytext':
    case 'text':
    case 'mediumtext':
    case 'longtext':
      return c.isJson ? { kind: 'json' } : { kind: 'string', charset: c.charset ?? 'utf8mb4' };
    case 'json':
      return { kind: 'json' };
    case 'uuid':
      // MariaDB 10.7+: BINARY(16) in the binlog, in display byte order.
      return { kind: 'uuid' };
    case 'tinyblob':
    case 'blob':
    case 'mediumblob':
    case 'longblob':
      return { kind: 'bytes' };
    default:
      if (GEOMETRY_NAMES.includes(c.dataType.toLowerCase())) return { kind: 'bytes' };
      return { kind: 'unknown' };
  }
}

export function infoColumnSchema(c: InfoColumn): ColumnSchema {
  return {
    name: c.name,
    type: infoColumnType(c),
    nullable: c.nullable,
    sourceType: c.isJson ? 'json' : c.columnType,
    defaultExpr: c.defaultExpr,
  };
}
