import type { ColumnValue } from '../../schemas/column-types.js';

/**
 * Text -> canonical value decoders (the table in schemas/column-types.ts) for what the walsender
 * prints under REPLICATION_SESSION_OPTIONS (DateStyle=ISO, IntervalStyle=iso_8601, TimeZone=UTC,
 * extra_float_digits=3, bytea_output=hex). Nothing goes through a JS Date; only types that a
 * double holds exactly (int2/int4/oid, float4/float8) become numbers.
 */
export type TextDecoder = (text: string) => ColumnValue;

export class ValueError extends Error {
  override name = 'ValueError';
}

export const asText: TextDecoder = (t) => t;

export const decodeBool: TextDecoder = (t) => {
  if (t === 't') return true;
  if (t === 'f') return false;
  throw new ValueError(`not a boolean: ${t}`);
};

/** int2, int4, oid, xid: exact in a double. */
export const decodeSmallInt: TextDecoder = (t) => {
  const n = Number(t);
  if (!Number.isInteger(n)) throw new ValueError(`not an integer: ${t}`);
  return n;
};

/** float4/float8: the shortest text that reads back as the same binary value, as a number. */
export const decodeFloat: TextDecoder = (t) => {
  if (t === 'NaN' || t === 'Infinity' || t === '-Infinity') return t;
  const n = Number(t);
  if (Number.isNaN(n)) throw new ValueError(`not a float: ${t}`);
  return n;
};

export const decodeBytea: TextDecoder = (t) => {
  if (!t.startsWith('\\x')) throw new ValueError(`bytea not in hex format (bytea_output must be hex): ${t.slice(0, 20)}`);
  return Buffer.from(t.slice(2), 'hex').toString('base64');
};

const BC = ' BC';

/** 'YYYY-MM-DD HH:MM:SS[.ffffff][ BC]' -> 'YYYY-MM-DDTHH:MM:SS[.ffffff][ BC]'. */
export const decodeTimestamp: TextDecoder = (t) => {
  if (t === 'infinity' || t === '-infinity') return t;
  const sp = t.indexOf(' ');
  if (sp < 0) throw new ValueError(`not an ISO timestamp: ${t}`);
  return `${t.slice(0, sp)}T${t.slice(sp + 1)}`;
};

/**
 * 'YYYY-MM-DD HH:MM:SS[.ffffff]+00[ BC]' -> 'YYYY-MM-DDTHH:MM:SS[.ffffff]Z[ BC]'. The session runs
 * with TimeZone=UTC, so any other offset means the settings did not take effect.
 */
export const decodeTimestamptz: TextDecoder = (t) => {
  if (t === 'infinity' || t === '-infinity') return t;
  const bc = t.endsWith(BC);
  const body = bc ? t.slice(0, -BC.length) : t;
  if (!body.endsWith('+00')) throw new ValueError(`timestamptz not in UTC (TimeZone must be UTC): ${t}`);
  const sp = body.indexOf(' ');
  if (sp < 0) throw new ValueError(`not an ISO timestamptz: ${t}`);
  return `${body.slice(0, sp)}T${body.slice(sp + 1, -3)}Z${bc ? BC : ''}`;
};

/**
 * PostgreSQL array literal -> nested JSON array of decoded elements. Handles quoting, backslash
 * escapes, NULL, nested dimensions and the `[l:u]=` prefix of arrays whose lower bound is not 1
 * (the bounds are dropped: JSON arrays start at 0).
 */
export function parseArray(text: string, element: TextDecoder, delim = ','): ColumnValue[] {
  let i = 0;
  if (text[0] === '[') {
    const eq = text.indexOf('=');
    if (eq < 0) throw new ValueError(`bad array bounds: ${text.slice(0, 40)}`);
    i = eq + 1;
  }
  const parseLevel = (): ColumnValue[] => {
    if (text[i] !== '{') throw new ValueError(`expected '{' at ${i} in array ${text.slice(0, 80)}`);
    i++;
    const out: ColumnValue[] = [];
    if (text[i] === '}') {
      i++;
      return out;
    }
    for (;;) {
      const c = text[i];
      if (c === '{') {
        out.push(parseLevel());
      } else if (c === '"') {
        i++;
        let s = '';
        let start = i;
        for (;;) {
          const ch = text[i];
          if (ch === undefined) throw new ValueError(`unterminated quoted element in array ${text.slice(0, 80)}`);
          if (ch === '\\') {
            s += text.slice(start, i) + (text[i + 1] ?? '');
            i += 2;
            start = i;
          } else if (ch === '"') {
            s += text.slice(start, i);
            i++;
            break;
          } else i++;
        }
        out.push(element(s));
      } else {
        const start = i;
        while (i < text.length && text[i] !== delim && text[i] !== '}') i++;
        const raw = text.slice(start, i);
        out.push(raw.toUpperCase() === 'NULL' ? null : element(raw));
      }
      const sep = text[i];
      if (sep === delim) {
        i++;
        continue;
      }
      if (sep === '}') {
        i++;
        return out;
      }
      throw new ValueError(`unexpected '${sep ?? 'end'}' at ${i} in array ${text.slice(0, 80)}`);
    }
  };
  const v = parseLevel();
  if (i !== text.length) throw new ValueError(`trailing characters after array: ${text.slice(i, i + 20)}`);
  return v;
}
