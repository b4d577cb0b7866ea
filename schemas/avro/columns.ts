import type { ColumnType, ColumnValue } from '../column-types.js';
import { bigintToBytes, bytesToBigint, digits, formatDecimal, parseDecimal } from './decimal.js';
import { type FractionStyle, formatDate, formatTime, formatTimestamp, parseDate, parseTime, parseTimestamp } from './temporal.js';

/** An Avro schema as JSON. */
export type AvroSchema = string | { [k: string]: unknown } | AvroSchema[];

/** The value has no form in the column's Avro type (e.g. 'NaN' numeric, 'infinity' date). */
export const UNREPRESENTABLE: unique symbol = Symbol('unrepresentable');

/**
 * The Avro value is right for generic consumers but would not print back to the exact canonical
 * text (e.g. '1024.5' in a numeric(12,2) column decodes as '1024.50'); the text goes beside it.
 */
export class Inexact {
  constructor(readonly value: unknown) {}
}

export type Encoded = unknown | typeof UNREPRESENTABLE | Inexact;

/** How one column's canonical values map to Avro and back. */
export interface ColumnConverter {
  /** Non-null Avro type of the column. */
  readonly avro: AvroSchema;
  /** True when the Avro type is a plain string: such columns carry any text as is. */
  readonly isString: boolean;
  encode(v: Exclude<ColumnValue, null>): Encoded;
  decode(a: unknown): ColumnValue;
  /** A value of the Avro type, for required (key) fields that hold an unrepresentable value. */
  readonly zero: unknown;
  /** JSON default for `zero` in a schema. */
  readonly zeroJson: unknown;
}

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const AVRO_SYMBOL = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Shortest decimal that reads back as the same float32 (what PostgreSQL 12+ prints for real). */
export function shortestFloat32(f: number): number {
  if (!Number.isFinite(f)) return f;
  for (let p = 1; p <= 9; p++) {
    const x = Number(f.toPrecision(p));
    if (Math.fround(x) === f) return x;
  }
  return f;
}

function specialFloat(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (v === 'NaN') return Number.NaN;
  if (v === 'Infinity') return Number.POSITIVE_INFINITY;
  if (v === '-Infinity') return Number.NEGATIVE_INFINITY;
  return undefined;
}

function floatOut(f: number): ColumnValue {
  if (Number.isNaN(f)) return 'NaN';
  if (f === Number.POSITIVE_INFINITY) return 'Infinity';
  if (f === Number.NEGATIVE_INFINITY) return '-Infinity';
  return f;
}

/** Integers that fit Avro's int (int8-32, MySQL YEAR). */
const INT32: ColumnConverter = {
  avro: 'int',
  isString: false,
  encode: (v) => (typeof v === 'number' && Number.isInteger(v) && v >= INT32_MIN && v <= INT32_MAX ? v : UNREPRESENTABLE),
  decode: (a) => a as number,
  zero: 0,
  zeroJson: 0,
};

const STRING: ColumnConverter = {
  avro: 'string',
  isString: true,
  encode: (v) => (typeof v === 'string' ? v : UNREPRESENTABLE),
  decode: (a) => a as string,
  zero: '',
  zeroJson: '',
};

function stringLike(avro: AvroSchema): ColumnConverter {
  return { ...STRING, avro };
}

/** Decimal kept as bytes + logicalType decimal; canonical text reproduced at the column's scale. */
function decimalBytes(precision: number, scale: number, extra: Record<string, unknown> = {}): ColumnConverter {
  return {
    avro: { type: 'bytes', logicalType: 'decimal', precision, scale, ...extra },
    isString: false,
    encode(v) {
      if (typeof v !== 'string') return UNREPRESENTABLE;
      const unscaled = parseDecimal(v, scale);
      if (unscaled === undefined || digits(unscaled) > precision) return UNREPRESENTABLE;
      const bytes = bigintToBytes(unscaled);
      return formatDecimal(unscaled, scale) === v ? bytes : new Inexact(bytes);
    },
    decode: (a) => formatDecimal(bytesToBigint(a as Buffer), scale),
    zero: Buffer.alloc(1),
    zeroJson: '\u0000',
  };
}

/** How a dialect prints fraction digits of time values (see temporal.ts). */
function fractionStyle(dialect: 'postgres' | 'mysql', precision: number | undefined): FractionStyle {
  return dialect === 'mysql' && precision !== undefined ? { fixed: precision } : 'trim';
}

/**
 * The converter of a column type. `field` (the Avro field name) names enum types; `dialect`
 * decides how temporal fractions are printed back.
 */
export function columnConverter(t: ColumnType, dialect: 'postgres' | 'mysql', field: string, namespace: string): ColumnConverter {
  switch (t.kind) {
    case 'bool':
      return {
        avro: 'boolean',
        isString: false,
        encode: (v) => (typeof v === 'boolean' ? v : UNREPRESENTABLE),
        decode: (a) => a as boolean,
        zero: false,
        zeroJson: false,
      };
    case 'int':
      if (t.bits === 64 && t.unsigned) return decimalBytes(20, 0);
      if (t.bits === 64) {
        return {
          avro: 'long',
          isString: false,
          encode(v) {
            // Up to 15 digits a double holds it exactly: no BigInt needed.
            if (typeof v === 'string' && v.length <= 15 && /^-?\d+$/.test(v)) {
              const n = Number(v);
              return String(n) === v ? n : new Inexact(n);
            }
            if (typeof v !== 'string' && typeof v !== 'number') return UNREPRESENTABLE;
            let n: bigint;
            try {
              n = BigInt(v);
            } catch {
              return UNREPRESENTABLE;
            }
            if (n < INT64_MIN || n > INT64_MAX) return UNREPRESENTABLE;
            return typeof v === 'string' && n.toString() === v ? n : new Inexact(n);
          },
          decode: (a) => (a as bigint).toString(),
          zero: 0n,
          zeroJson: 0,
        };
      }
      if (t.bits === 32 && t.unsigned) {
        return {
          avro: 'long',
          isString: false,
          encode: (v) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 2 ** 32 - 1 ? BigInt(v) : UNREPRESENTABLE),
          decode: (a) => Number(a as bigint),
          zero: 0n,
          zeroJson: 0,
        };
      }
      return INT32;
    case 'year':
      return INT32;
    case 'float':
      if (t.bits === 32) {
        return {
          avro: 'float',
          isString: false,
          encode(v) {
            const f = specialFloat(v);
            if (f === undefined) return UNREPRESENTABLE;
            const r = Math.fround(f);
            return typeof v !== 'number' || Object.is(shortestFloat32(r), v) || (Number.isNaN(v) && Number.isNaN(r)) ? r : new Inexact(r);
          },
          decode: (a) => floatOut(shortestFloat32(a as number)),
          zero: 0,
          zeroJson: 0,
        };
      }
      return {
        avro: 'double',
        isString: false,
        encode: (v) => specialFloat(v) ?? UNREPRESENTABLE,
        decode: (a) => floatOut(a as number),
        zero: 0,
        zeroJson: 0,
      };
    case 'decimal':
      // Unbounded (PostgreSQL numeric without typmod) has no fixed scale for Avro's decimal:
      // the exact text travels as a string.
      if (t.precision === undefined) return stringLike({ type: 'string', 'cdc.logicalType': 'decimal-text' });
      return decimalBytes(t.precision, t.scale ?? 0);
    case 'string':
    case 'json':
    case 'interval':
    case 'set':
    case 'bit':
    case 'unknown':
      return STRING;
    case 'uuid':
      return stringLike({ type: 'string', logicalType: 'uuid' });
    case 'bytes':
      return {
        avro: 'bytes',
        isString: false,
        encode(v) {
          if (typeof v !== 'string') return UNREPRESENTABLE;
          const buf = Buffer.from(v, 'base64');
          return buf.toString('base64') === v ? buf : new Inexact(buf);
        },
        decode: (a) => (a as Buffer).toString('base64'),
        zero: Buffer.alloc(0),
        zeroJson: '',
      };
    case 'date':
      return {
        avro: { type: 'int', logicalType: 'date' },
        isString: false,
        encode(v) {
          if (typeof v !== 'string') return UNREPRESENTABLE;
          const d = parseDate(v);
          if (d === undefined || d < INT32_MIN || d > INT32_MAX) return UNREPRESENTABLE;
          return formatDate(d) === v ? d : new Inexact(d);
        },
        decode: (a) => formatDate(a as number),
        zero: 0,
        zeroJson: 0,
      };
    case 'time': {
      if (t.tz) return STRING; // with its offset: no Avro logical type keeps it
      const style = fractionStyle(dialect, t.precision);
      return {
        avro: { type: 'long', logicalType: 'time-micros' },
        isString: false,
        encode(v) {
          if (typeof v !== 'string') return UNREPRESENTABLE;
          const us = parseTime(v);
          // time-micros is a time of day: PostgreSQL's 24:00:00 and MySQL's durations beyond a
          // day or negative are outside it (Java's LocalTime refuses them): raw text instead.
          if (us === undefined || us < 0 || us >= 86_400_000_000) return UNREPRESENTABLE;
          return formatTime(us, style) === v ? us : new Inexact(us);
        },
        decode: (a) => formatTime(a as bigint, style),
        zero: 0n,
        zeroJson: 0,
      };
    }
    case 'timestamp': {
      const style = fractionStyle(dialect, t.precision);
      const tz = t.tz;
      return {
        // Avro 1.10+: timestamp-* is an instant, local-timestamp-* a wall-clock time.
        avro: { type: 'long', logicalType: tz ? 'timestamp-micros' : 'local-timestamp-micros' },
        isString: false,
        encode(v) {
          if (typeof v !== 'string') return UNREPRESENTABLE;
          const us = parseTimestamp(v, tz);
          if (us === undefined || (typeof us === 'bigint' && (us < INT64_MIN || us > INT64_MAX))) return UNREPRESENTABLE;
          return formatTimestamp(us, tz, style) === v ? us : new Inexact(us);
        },
        decode: (a) => {
          const n = Number(a as bigint);
          return formatTimestamp(Number.isSafeInteger(n) ? n : (a as bigint), tz, style);
        },
        zero: 0n,
        zeroJson: 0,
      };
    }
    case 'enum': {
      const symbols = t.values;
      if (symbols.length === 0 || new Set(symbols).size !== symbols.length || !symbols.every((s) => AVRO_SYMBOL.test(s))) {
        // Labels Avro cannot name ('in progress', ''): a string, the labels stay in the metadata.
        return STRING;
      }
      const known = new Set(symbols);
      return {
        avro: { type: 'enum', name: 'Enum', namespace: `${namespace}.${field}`, symbols },
        isString: false,
        encode: (v) => (typeof v === 'string' && known.has(v) ? v : UNREPRESENTABLE),
        decode: (a) => a as string,
        zero: symbols[0],
        zeroJson: symbols[0],
      };
    }
    case 'array': {
      const dims = Math.max(1, t.dims ?? 1);
      const element = columnConverter(t.element, dialect, field, namespace);
      let conv = arrayOf(element);
      for (let d = 2; d <= dims; d++) conv = arrayOf(conv);
      return conv;
    }
  }
}

/** An array whose items may be null (PostgreSQL arrays hold NULLs). */
function arrayOf(item: ColumnConverter): ColumnConverter {
  return {
    avro: { type: 'array', items: ['null', item.avro] },
    isString: false,
    encode(v) {
      if (!Array.isArray(v)) return UNREPRESENTABLE;
      const out: unknown[] = new Array(v.length);
      let inexact = false;
      for (let i = 0; i < v.length; i++) {
        const e = v[i];
        if (e === null || e === undefined) {
          out[i] = null;
          continue;
        }
        const r = item.encode(e);
        if (r === UNREPRESENTABLE) return UNREPRESENTABLE;
        if (r instanceof Inexact) {
          inexact = true;
          out[i] = r.value;
        } else out[i] = r;
      }
      return inexact ? new Inexact(out) : out;
    },
    decode: (a) => (a as unknown[]).map((e) => (e === null ? null : item.decode(e))),
    zero: [],
    zeroJson: [],
  };
}
