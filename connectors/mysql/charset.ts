import { CdcError } from '../../schemas/errors.js';

/**
 * Collation ids (what TABLE_MAP metadata carries per column) to character sets, and character
 * sets to text decoders. The server's own table (information_schema) is loaded at connect time;
 * the static table below covers the common ids for unit tests and as a fallback.
 */

export interface CharsetInfo {
  name: string;
  /** Bytes per character at most (utf8mb4: 4), to turn byte lengths back into CHAR(n)/VARCHAR(n). */
  maxLen: number;
}

/** Bytes per character of every charset MySQL 8 and MariaDB 10.11 know. */
export const CHARSET_MAXLEN: Record<string, number> = {
  big5: 2, dec8: 1, cp850: 1, hp8: 1, koi8r: 1, latin1: 1, latin2: 1, swe7: 1, ascii: 1, ujis: 3, sjis: 2,
  hebrew: 1, tis620: 1, euckr: 2, koi8u: 1, gb2312: 2, greek: 1, cp1250: 1, gbk: 2, latin5: 1, armscii8: 1,
  utf8: 3, utf8mb3: 3, ucs2: 2, cp866: 1, keybcs2: 1, macce: 1, macroman: 1, cp852: 1, latin7: 1, utf8mb4: 4,
  cp1251: 1, utf16: 4, utf16le: 4, cp1256: 1, cp1257: 1, utf32: 4, binary: 1, geostd8: 1, cp932: 2, eucjpms: 3,
  gb18030: 4,
};

function range(from: number, to: number, name: string): [number, string][] {
  const out: [number, string][] = [];
  for (let i = from; i <= to; i++) out.push([i, name]);
  return out;
}

/** Common collation ids, identical in MySQL and MariaDB. */
const STATIC: Map<number, string> = new Map([
  [1, 'big5'], [84, 'big5'], [3, 'dec8'], [4, 'cp850'], [6, 'hp8'], [7, 'koi8r'],
  [5, 'latin1'], [8, 'latin1'], [15, 'latin1'], [31, 'latin1'], [47, 'latin1'], [48, 'latin1'], [49, 'latin1'], [94, 'latin1'],
  [2, 'latin2'], [9, 'latin2'], [21, 'latin2'], [27, 'latin2'], [77, 'latin2'],
  [11, 'ascii'], [65, 'ascii'], [12, 'ujis'], [91, 'ujis'], [13, 'sjis'], [88, 'sjis'],
  [16, 'hebrew'], [71, 'hebrew'], [18, 'tis620'], [89, 'tis620'], [19, 'euckr'], [85, 'euckr'],
  [22, 'koi8u'], [75, 'koi8u'], [24, 'gb2312'], [86, 'gb2312'], [25, 'greek'], [70, 'greek'],
  [26, 'cp1250'], [34, 'cp1250'], [44, 'cp1250'], [66, 'cp1250'], [99, 'cp1250'],
  [28, 'gbk'], [87, 'gbk'], [30, 'latin5'], [78, 'latin5'],
  [33, 'utf8mb3'], [83, 'utf8mb3'], [76, 'utf8mb3'], ...range(192, 215, 'utf8mb3'), [223, 'utf8mb3'],
  [35, 'ucs2'], [90, 'ucs2'], ...range(128, 151, 'ucs2'), [159, 'ucs2'],
  [36, 'cp866'], [68, 'cp866'], [38, 'macce'], [43, 'macce'], [39, 'macroman'], [53, 'macroman'],
  [40, 'cp852'], [81, 'cp852'], [20, 'latin7'], [41, 'latin7'], [42, 'latin7'], [79, 'latin7'],
  [45, 'utf8mb4'], [46, 'utf8mb4'], ...range(224, 247, 'utf8mb4'), ...range(255, 323, 'utf8mb4'),
  [14, 'cp1251'], [23, 'cp1251'], [50, 'cp1251'], [51, 'cp1251'], [52, 'cp1251'],
  [54, 'utf16'], [55, 'utf16'], ...range(101, 124, 'utf16'), [56, 'utf16le'], [62, 'utf16le'],
  [57, 'cp1256'], [67, 'cp1256'], [29, 'cp1257'], [58, 'cp1257'], [59, 'cp1257'],
  [60, 'utf32'], [61, 'utf32'], ...range(160, 183, 'utf32'), [63, 'binary'], [92, 'geostd8'], [93, 'geostd8'],
  [95, 'cp932'], [96, 'cp932'], [97, 'eucjpms'], [98, 'eucjpms'], [248, 'gb18030'], [249, 'gb18030'], [250, 'gb18030'],
]);

/** Collation id -> charset name; starts with the static table, the server's own list is merged in. */
export class Collations {
  private readonly map = new Map(STATIC);
  private readonly ids = new Map<string, number>();

  /** Adds the server's (id, charset[, names]) rows; they win over the static table. */
  load(rows: { id: number; charset: string; name?: string | null; fullName?: string | null }[]): void {
    for (const r of rows) {
      this.map.set(Number(r.id), r.charset);
      if (r.name) this.ids.set(r.name.toLowerCase(), Number(r.id));
      if (r.fullName) this.ids.set(r.fullName.toLowerCase(), Number(r.id));
    }
  }

  /** Collation id of a collation name (as information_schema prints it), when the server listed it. */
  idOf(name: string | null | undefined): number | undefined {
    return name ? this.ids.get(name.toLowerCase()) : undefined;
  }

  charset(id: number): CharsetInfo {
    const name = this.map.get(id);
    if (name === undefined) throw new CdcError(`unknown collation id ${id} in TABLE_MAP metadata`, { code: 'UNSUPPORTED_CHARSET' });
    return { name, maxLen: CHARSET_MAXLEN[name] ?? 4 };
  }
}

export type TextDecodeFn = (buf: Buffer, start: number, end: number) => string;

const WHATWG: Record<string, string> = {
  latin2: 'iso-8859-2',
  latin5: 'iso-8859-9',
  latin7: 'iso-8859-13',
  greek: 'iso-8859-7',
  hebrew: 'iso-8859-8',
  cp1250: 'windows-1250',
  cp1251: 'windows-1251',
  cp1256: 'windows-1256',
  cp1257: 'windows-1257',
  koi8r: 'koi8-r',
  koi8u: 'koi8-u',
  cp866: 'ibm866',
  macroman: 'macintosh',
  tis620: 'windows-874',
  sjis: 'shift_jis',
  cp932: 'shift_jis',
  ujis: 'euc-jp',
  eucjpms: 'euc-jp',
  euckr: 'euc-kr',
  gbk: 'gbk',
  gb2312: 'gbk',
  gb18030: 'gb18030',
  big5: 'big5',
  ucs2: 'utf-16be',
  utf16: 'utf-16be',
  utf16le: 'utf-16le',
};

const utf8: TextDecodeFn = (buf, start, end) => buf.toString('utf8', start, end);

function utf32(buf: Buffer, start: number, end: number): string {
  let s = '';
  for (let i = start; i + 4 <= end; i += 4) s += String.fromCodePoint(buf.readUInt32BE(i));
  return s;
}

/**
 * MySQL's latin1 is cp1252 (0x80 = EURO SIGN), with the five bytes cp1252 leaves undefined mapped
 * to the C1 controls. Decoded by hand: Node 20's TextDecoder('windows-1252') takes a latin1 fast
 * path and returns U+0080 for 0x80.
 */
const CP1252_HIGH = [
  0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0x8d, 0x17d, 0x8f,
  0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a, 0x153, 0x9d, 0x17e, 0x178,
];

export function cp1252(buf: Buffer, start: number, end: number): string {
  let plain = true;
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    if (b >= 0x80 && b < 0xa0) {
      plain = false;
      break;
    }
  }
  if (plain) return buf.toString('latin1', start, end);
  let s = '';
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    s += String.fromCharCode(b >= 0x80 && b < 0xa0 ? CP1252_HIGH[b - 0x80]! : b);
  }
  return s;
}

const cache = new Map<string, TextDecodeFn>();

/**
 * The decoder for a charset, or an error naming it when Node cannot decode it (dec8, swe7,
 * keybcs2, armscii8, geostd8, cp850, cp852, hp8, macce: rare; refused rather than mangled).
 */
export function textDecoder(charset: string): TextDecodeFn {
  const hit = cache.get(charset);
  if (hit) return hit;
  let fn: TextDecodeFn;
  if (charset === 'utf8mb4' || charset === 'utf8mb3' || charset === 'utf8') fn = utf8;
  else if (charset === 'ascii') fn = (buf, s, e) => buf.toString('latin1', s, e);
  else if (charset === 'latin1') fn = cp1252;
  else if (charset === 'utf32') fn = utf32;
  else {
    const label = WHATWG[charset];
    if (label === undefined) {
      throw new CdcError(`character set ${charset} is not supported by the MySQL source (convert the column to utf8mb4)`, { code: 'UNSUPPORTED_CHARSET' });
    }
    const dec = new TextDecoder(label);
    fn = (buf, s, e) => dec.decode(buf.subarray(s, e));
  }
  cache.set(charset, fn);
  return fn;
}
