import type { ColumnType, ColumnValue } from '../../schemas/column-types.js';
import {
  type TextDecoder,
  asText,
  decodeBool,
  decodeBytea,
  decodeFloat,
  decodeSmallInt,
  decodeTimestamp,
  decodeTimestamptz,
  parseArray,
} from './values.js';

/** The pg_type facts the mapping needs (loaded by catalog.ts, cached by OID). */
export interface PgTypeInfo {
  oid: number;
  namespace: string;
  name: string;
  /** b base, c composite, d domain, e enum, p pseudo, r range, m multirange */
  typtype: string;
  /** A array, B bool, D date/time, N numeric, S string, U user, ... */
  category: string;
  /** Element type of an array type, else 0. */
  elem: number;
  /** Base type of a domain, else 0. */
  baseType: number;
  /** Typmod a domain applies to its base type (-1 when none). */
  typmod: number;
  /** Element delimiter in array literals (',' except box: ';'). */
  delim: string;
  /** Enum labels in sort order. */
  labels: string[] | null;
}

export interface ColumnCodec {
  type: ColumnType;
  decode: TextDecoder;
  /** Set when the type is not understood and values pass through as the source's text. */
  passthrough?: string;
}

/** Built-in OIDs (fixed in every PostgreSQL release, pg_type.dat). */
export const OID = {
  bool: 16,
  bytea: 17,
  char: 18,
  name: 19,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  oid: 26,
  tid: 27,
  xid: 28,
  cid: 29,
  json: 114,
  xml: 142,
  cidr: 650,
  float4: 700,
  float8: 701,
  macaddr8: 774,
  money: 790,
  macaddr: 829,
  inet: 869,
  bpchar: 1042,
  varchar: 1043,
  date: 1082,
  time: 1083,
  timestamp: 1114,
  timestamptz: 1184,
  interval: 1186,
  timetz: 1266,
  bit: 1560,
  varbit: 1562,
  numeric: 1700,
  uuid: 2950,
  pg_lsn: 3220,
  jsonb: 3802,
  jsonpath: 4072,
  xid8: 5069,
} as const;

const codec = (type: ColumnType, decode: TextDecoder = asText): ColumnCodec => ({ type, decode });

function withLength(typmod: number): number | undefined {
  return typmod >= 4 ? typmod - 4 : undefined;
}

function precision(typmod: number): number | undefined {
  return typmod >= 0 ? typmod : undefined;
}

/** numeric typmod: ((precision << 16) | scale) + 4, scale an 11-bit signed field since PG 15. */
export function numericTypmod(typmod: number): { precision?: number; scale?: number } {
  if (typmod < 4) return {};
  const v = typmod - 4;
  const scaleBits = v & 0x7ff;
  return { precision: (v >> 16) & 0xffff, scale: (scaleBits ^ 0x400) - 0x400 };
}

/** Codecs of built-in scalar types by OID; undefined for anything else. */
function builtin(oid: number, typmod: number): ColumnCodec | undefined {
  switch (oid) {
    case OID.bool:
      return codec({ kind: 'bool' }, decodeBool);
    case OID.int2:
      return codec({ kind: 'int', bits: 16 }, decodeSmallInt);
    case OID.int4:
      return codec({ kind: 'int', bits: 32 }, decodeSmallInt);
    case OID.oid:
    case OID.xid:
    case OID.cid:
      return codec({ kind: 'int', bits: 32, unsigned: true }, decodeSmallInt);
    case OID.int8:
      return codec({ kind: 'int', bits: 64 });
    case OID.xid8:
      return codec({ kind: 'int', bits: 64, unsigned: true });
    case OID.float4:
      return codec({ kind: 'float', bits: 32 }, decodeFloat);
    case OID.float8:
      return codec({ kind: 'float', bits: 64 }, decodeFloat);
    case OID.numeric:
      return codec({ kind: 'decimal', ...numericTypmod(typmod) });
    case OID.text:
    case OID.xml:
    case OID.jsonpath:
    case OID.pg_lsn:
    case OID.inet:
    case OID.cidr:
    case OID.macaddr:
    case OID.macaddr8:
    case OID.tid:
      return codec({ kind: 'string' });
    case OID.name:
      return codec({ kind: 'string', length: 63 });
    case OID.char:
      return codec({ kind: 'string', length: 1, fixed: true });
    case OID.varchar: {
      const length = withLength(typmod);
      return codec(length === undefined ? { kind: 'string' } : { kind: 'string', length });
    }
    case OID.bpchar: {
      const length = withLength(typmod);
      return codec(length === undefined ? { kind: 'string', fixed: true } : { kind: 'string', length, fixed: true });
    }
    case OID.bytea:
      return codec({ kind: 'bytes' }, decodeBytea);
    case OID.uuid:
      return codec({ kind: 'uuid' }, (t) => t.toLowerCase());
    case OID.json:
    case OID.jsonb:
      return codec({ kind: 'json' });
    case OID.date:
      return codec({ kind: 'date' });
    case OID.time: {
      const p = precision(typmod);
      return codec(p === undefined ? { kind: 'time' } : { kind: 'time', precision: p });
    }
    case OID.timetz: {
      const p = precision(typmod);
      return codec(p === undefined ? { kind: 'time', tz: true } : { kind: 'time', precision: p, tz: true });
    }
    case OID.timestamp: {
      const p = precision(typmod);
      return codec(p === undefined ? { kind: 'timestamp', tz: false } : { kind: 'timestamp', precision: p, tz: false }, decodeTimestamp);
    }
    case OID.timestamptz: {
      const p = precision(typmod);
      return codec(p === undefined ? { kind: 'timestamp', tz: true } : { kind: 'timestamp', precision: p, tz: true }, decodeTimestamptz);
    }
    case OID.interval:
      return codec({ kind: 'interval' });
    case OID.bit:
      return codec({ kind: 'bit', length: typmod > 0 ? typmod : 1 });
    case OID.varbit:
      // bit varying without a limit: length 0 stands for "unbounded" (sourceType says varying).
      return codec({ kind: 'bit', length: typmod > 0 ? typmod : 0 });
    default:
      return undefined;
  }
}

/** Extension types that are text in all but name. */
const TEXT_LIKE_EXTENSION_TYPES = new Set(['citext']);

/**
 * Maps a column's type OID and typmod to its neutral type and value decoder. `lookup` returns
 * pg_type facts for non-built-in OIDs (domains, enums, arrays, extension types); types it does
 * not understand pass through as text, with `passthrough` saying why.
 */
export function columnCodec(oid: number, typmod: number, lookup: (oid: number) => PgTypeInfo | undefined, depth = 0): ColumnCodec {
  const b = builtin(oid, typmod);
  if (b) return b;
  const info = lookup(oid);
  if (!info) return { type: { kind: 'unknown' }, decode: asText, passthrough: `type oid ${oid} not found in pg_type` };
  if (depth > 8) return { type: { kind: 'unknown' }, decode: asText, passthrough: `type ${info.name} nests too deeply` };
  if (info.typtype === 'd' && info.baseType !== 0) {
    return columnCodec(info.baseType, typmod >= 0 ? typmod : info.typmod, lookup, depth + 1);
  }
  if (info.category === 'A' && info.elem !== 0) {
    const elemInfo = lookup(info.elem);
    const el = columnCodec(info.elem, typmod, lookup, depth + 1);
    const delim = elemInfo?.delim ?? ',';
    const decodeEl = el.decode;
    return {
      type: { kind: 'array', element: el.type },
      decode: (t) => parseArray(t, decodeEl, delim),
      ...(el.passthrough ? { passthrough: `array element: ${el.passthrough}` } : {}),
    };
  }
  if (info.typtype === 'e') return codec({ kind: 'enum', values: info.labels ?? [], name: info.name });
  if (TEXT_LIKE_EXTENSION_TYPES.has(info.name)) return codec({ kind: 'string' });
  const what =
    info.typtype === 'c' ? 'composite type' : info.typtype === 'r' ? 'range type' : info.typtype === 'm' ? 'multirange type' : 'type';
  return { type: { kind: 'unknown' }, decode: asText, passthrough: `${what} ${info.namespace}.${info.name} has no neutral mapping` };
}

/** Decodes one value, or says which column failed. */
export function decodeValue(c: ColumnCodec, text: string): ColumnValue {
  return c.decode(text);
}
