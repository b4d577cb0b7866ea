import { CdcError } from '../../schemas/errors.js';
import { decodeDecimal } from './decimal.js';

/**
 * MySQL 8's binary JSON (sql-common/json_binary.h) to JSON text, printed the way the server
 * prints it (`SELECT json_col`: `{"a": 1, "b": [1, 2]}`, doubles through my_gcvt with a `.0`
 * on whole numbers, dates as quoted 'YYYY-MM-DD HH:MM:SS.ffffff', other opaque values as
 * "base64:typeNN:..."), so the Kafka value equals what a client reads from the server.
 *
 *   doc          ::= type value
 *   object/array ::= element-count size key-entry* value-entry* key* value*
 *   key-entry    ::= key-offset key-length(uint16)
 *   value-entry  ::= type offset-or-inlined-value
 *
 * Counts, sizes and offsets are uint16 in small and uint32 in large containers; offsets count
 * from the start of the container's element-count.
 */

const SMALL_OBJECT = 0x00;
const LARGE_OBJECT = 0x01;
const SMALL_ARRAY = 0x02;
const LARGE_ARRAY = 0x03;
const LITERAL = 0x04;
const INT16 = 0x05;
const UINT16 = 0x06;
const INT32 = 0x07;
const UINT32 = 0x08;
const INT64 = 0x09;
const UINT64 = 0x0a;
const DOUBLE = 0x0b;
const STRING = 0x0c;
const OPAQUE = 0x0f;

// Field types an opaque value can carry that the server prints specially.
const MYSQL_TYPE_NEWDECIMAL = 246;
const MYSQL_TYPE_DATE = 10;
const MYSQL_TYPE_TIME = 11;
const MYSQL_TYPE_DATETIME = 12;
const MYSQL_TYPE_TIMESTAMP = 7;
const MYSQL_TYPE_VAR_STRING = 253;

const MAX_DEPTH = 150;

function bad(msg: string): never {
  throw new CdcError(`corrupt binary JSON: ${msg}`, { code: 'BINLOG_DECODE' });
}

/** JSON string escaping as MySQL's double_quote(): \" \\ \b \f \n \r \t, other <= 0x1f as \u00xx. */
export function quoteJsonString(s: string): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x1f && c !== 0x22 && c !== 0x5c) continue;
    out += s.slice(start, i);
    start = i + 1;
    switch (c) {
      case 0x22:
        out += '\\"';
        break;
      case 0x5c:
        out += '\\\\';
        break;
      case 0x08:
        out += '\\b';
        break;
      case 0x0c:
        out += '\\f';
        break;
      case 0x0a:
        out += '\\n';
        break;
      case 0x0d:
        out += '\\r';
        break;
      case 0x09:
        out += '\\t';
        break;
      default:
        out += `\\u00${c.toString(16).padStart(2, '0')}`;
    }
  }
  return `${out}${s.slice(start)}"`;
}

/**
 * A double as MySQL's my_gcvt(x, DOUBLE, 34) prints it: the shortest round-trip digits, in
 * fixed notation when the decimal point position is within [-14, 15] (or the digits reach
 * past it), else 'e' notation without '+' or exponent padding (1e300, 1.5e-20).
 */
export function mysqlDouble(x: number): string {
  if (!Number.isFinite(x)) return '0';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const neg = x < 0;
  const width = 34 - (neg ? 1 : 0);
  // Shortest round-trip digits and decimal exponent from JS (same digits as dtoa mode 0).
  const [mant, expPart] = Math.abs(x).toExponential().split('e') as [string, string];
  const digits = mant.replace('.', '');
  const len = digits.length;
  const decpt = Number(expPart) + 1;
  const expLen = 1 + (decpt >= 101 || decpt <= -99 ? 1 : 0) + (decpt >= 11 || decpt <= -9 ? 1 : 0);
  const fLen = decpt <= 0 ? len - decpt + 2 : decpt < len ? len + 1 : decpt;
  const haveSpace = fLen <= width;
  const forceE = decpt <= 0 && width <= 2 - decpt && width >= 3 + expLen;
  const useF =
    (haveSpace || (decpt <= width && (decpt >= -1 || (decpt === -2 && (len > 1 || !forceE))) && !forceE)) &&
    (!haveSpace || (decpt >= -15 + 1 && (decpt <= 15 || len > decpt)));
  let s: string;
  if (useF) {
    if (decpt <= 0) s = `0.${'0'.repeat(-decpt)}${digits}`;
    else if (decpt < len) s = `${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
    else s = digits + '0'.repeat(decpt - len);
  } else {
    const e = decpt - 1;
    s = `${digits[0]}${len > 1 ? `.${digits.slice(1)}` : ''}e${e < 0 ? '-' : ''}${Math.abs(e)}`;
  }
  return neg ? `-${s}` : s;
}

const pad2 = (n: number | bigint) => String(n).padStart(2, '0');

/** Packed temporal value (Json_datetime::to_packed: `ymdhms << 24 | micros`) as my_TIME_to_str(t, 6) prints it. */
function packedTemporal(fieldType: number, packed: bigint): string {
  const neg = packed < 0n;
  const abs = neg ? -packed : packed;
  const micros = abs % (1n << 24n);
  const intpart = abs >> 24n;
  const frac = `.${String(micros).padStart(6, '0')}`;
  if (fieldType === MYSQL_TYPE_TIME) {
    const hms = intpart % (1n << 17n);
    const hour = (intpart >> 12n) % (1n << 10n);
    const minute = (hms >> 6n) % 64n;
    const second = hms % 64n;
    return `${neg ? '-' : ''}${pad2(hour)}:${pad2(minute)}:${pad2(second)}${frac}`;
  }
  const ymd = intpart >> 17n;
  const hms = intpart % (1n << 17n);
  const ym = ymd >> 5n;
  const day = ymd % 32n;
  const year = ym / 13n;
  const month = ym % 13n;
  const date = `${String(year).padStart(4, '0')}-${pad2(month)}-${pad2(day)}`;
  if (fieldType === MYSQL_TYPE_DATE) return date;
  return `${date} ${pad2(hms >> 12n)}:${pad2((hms >> 6n) % 64n)}:${pad2(hms % 64n)}${frac}`;
}

class JsonReader {
  constructor(private readonly b: Buffer) {}

  private check(pos: number, n: number, what: string): void {
    if (pos < 0 || pos + n > this.b.length) bad(`${what} at ${pos}+${n} beyond ${this.b.length} bytes`);
  }

  /** Variable-length integer: 7 bits per byte, low bits first, high bit = more follows. */
  private varlen(pos: number): [number, number] {
    let len = 0;
    for (let i = 0; i < 5; i++) {
      this.check(pos + i, 1, 'length');
      const byte = this.b[pos + i]!;
      len |= (byte & 0x7f) << (7 * i);
      if ((byte & 0x80) === 0) return [len >>> 0, pos + i + 1];
    }
    bad('length field longer than 5 bytes');
  }

  value(type: number, pos: number, depth: number): string {
    if (depth > MAX_DEPTH) bad('nesting deeper than 150');
    switch (type) {
      case SMALL_OBJECT:
      case LARGE_OBJECT:
        return this.container(pos, type === LARGE_OBJECT, true, depth);
      case SMALL_ARRAY:
      case LARGE_ARRAY:
        return this.container(pos, type === LARGE_ARRAY, false, depth);
      case LITERAL:
        this.check(pos, 1, 'literal');
        return this.literal(this.b[pos]!);
      case INT16:
        this.check(pos, 2, 'int16');
        return String(this.b.readInt16LE(pos));
      case UINT16:
        this.check(pos, 2, 'uint16');
        return String(this.b.readUInt16LE(pos));
      case INT32:
        this.check(pos, 4, 'int32');
        return String(this.b.readInt32LE(pos));
      case UINT32:
        this.check(pos, 4, 'uint32');
        return String(this.b.readUInt32LE(pos));
      case INT64:
        this.check(pos, 8, 'int64');
        return this.b.readBigInt64LE(pos).toString();
      case UINT64:
        this.check(pos, 8, 'uint64');
        return this.b.readBigUInt64LE(pos).toString();
      case DOUBLE: {
        this.check(pos, 8, 'double');
        const s = mysqlDouble(this.b.readDoubleLE(pos));
        return /[.e]/.test(s) ? s : `${s}.0`;
      }
      case STRING: {
        const [len, start] = this.varlen(pos);
        this.check(start, len, 'string');
        return quoteJsonString(this.b.toString('utf8', start, start + len));
      }
      case OPAQUE:
        return this.opaque(pos);
      default:
        bad(`unknown value type 0x${type.toString(16)}`);
    }
  }

  private literal(v: number): string {
    if (v === 0) return 'null';
    if (v === 1) return 'true';
    if (v === 2) return 'false';
    bad(`unknown literal 0x${v.toString(16)}`);
  }

  private opaque(pos: number): string {
    this.check(pos, 1, 'opaque type');
    const fieldType = this.b[pos]!;
    const [len, start] = this.varlen(pos + 1);
    this.check(start, len, 'opaque data');
    const data = this.b.subarray(start, start + len);
    switch (fieldType) {
      case MYSQL_TYPE_NEWDECIMAL: {
        if (len < 2) bad('opaque decimal too short');
        return decodeDecimal(data, 2, data[0]!, data[1]!).value;
      }
      case MYSQL_TYPE_DATE:
      case MYSQL_TYPE_TIME:
      case MYSQL_TYPE_DATETIME:
      case MYSQL_TYPE_TIMESTAMP:
        if (len < 8) bad('opaque temporal value too short');
        return `"${packedTemporal(fieldType, data.readBigInt64LE(0))}"`;
      case MYSQL_TYPE_VAR_STRING:
        return quoteJsonString(data.toString('utf8'));
      default:
        return quoteJsonString(`base64:type${fieldType}:${data.toString('base64')}`);
    }
  }

  private container(pos: number, large: boolean, isObject: boolean, depth: number): string {
    const w = large ? 4 : 2;
    const rd = (p: number) => {
      this.check(p, w, 'offset');
      return large ? this.b.readUInt32LE(p) : this.b.readUInt16LE(p);
    };
    const count = rd(pos);
    const size = rd(pos + w);
    this.check(pos, size, isObject ? 'object' : 'array');
    const keyEntries = pos + 2 * w;
    const valueEntries = keyEntries + (isObject ? count * (w + 2) : 0);
    const parts: string[] = [];
    for (let i = 0; i < count; i++) {
      const ve = valueEntries + i * (1 + w);
      this.check(ve, 1 + w, 'value entry');
      const t = this.b[ve]!;
      let text: string;
      // Literals and small integers are stored inline in the value entry.
      if (t === LITERAL) text = this.literal(large ? this.b.readUInt32LE(ve + 1) : this.b.readUInt16LE(ve + 1));
      else if (t === INT16) text = String(this.b.readInt16LE(ve + 1));
      else if (t === UINT16) text = String(this.b.readUInt16LE(ve + 1));
      else if (large && t === INT32) text = String(this.b.readInt32LE(ve + 1));
      else if (large && t === UINT32) text = String(this.b.readUInt32LE(ve + 1));
      else {
        const off = rd(ve + 1);
        if (off >= size) bad(`value offset ${off} beyond container size ${size}`);
        text = this.value(t, pos + off, depth + 1);
      }
      if (isObject) {
        const ke = keyEntries + i * (w + 2);
        const koff = rd(ke);
        this.check(ke + w, 2, 'key length');
        const klen = this.b.readUInt16LE(ke + w);
        this.check(pos + koff, klen, 'key');
        parts.push(`${quoteJsonString(this.b.toString('utf8', pos + koff, pos + koff + klen))}: ${text}`);
      } else parts.push(text);
    }
    return isObject ? `{${parts.join(', ')}}` : `[${parts.join(', ')}]`;
  }
}

/** Decodes one binary JSON document (the bytes of a JSON column value) to its text. */
export function jsonBinaryToText(b: Buffer): string {
  // An empty value is how the binlog writes a JSON null document in some server versions.
  if (b.length === 0) return 'null';
  return new JsonReader(b).value(b[0]!, 1, 0);
}
