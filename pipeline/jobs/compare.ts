import { createHash } from 'node:crypto';
import type { ColumnSchema, ColumnValue, Row, TableSchema } from '../../schemas/index.js';

/**
 * Comparison of canonical rows across dialects. Canonical values are already dialect-neutral
 * (schemas/column-types.ts); what still differs between a PostgreSQL and a MariaDB copy of the
 * same data is only notation: `1.50` vs `1.5` when scales differ, `12:00:00.500000` vs
 * `12:00:00.5`, a 32-bit int as a number on one side and a 64-bit int as a string on the other,
 * JSON whitespace and key order (jsonb), a boolean kept in a tinyint. `comparable` removes exactly
 * those, nothing else: a changed digit, character or byte still differs.
 */

const NUMERIC_KINDS = new Set(['int', 'decimal', 'float', 'year', 'bool']);

function normNumber(s: string): string {
  if (!/^[+-]?\d*\.?\d*(e[+-]?\d+)?$/i.test(s) || s === '') return s;
  let t = s.replace(/^\+/, '');
  if (/e/i.test(t)) {
    const n = Number(t);
    return Number.isFinite(n) ? String(n) : t;
  }
  const neg = t.startsWith('-');
  if (neg) t = t.slice(1);
  let [int = '', frac = ''] = t.split('.');
  int = int.replace(/^0+(?=\d)/, '') || '0';
  frac = frac.replace(/0+$/, '');
  const out = frac ? `${int}.${frac}` : int;
  return neg && out !== '0' ? `-${out}` : out;
}

function normFraction(s: string): string {
  // '12:00:00.500000' -> '12:00:00.5', '12:00:00.000000' -> '12:00:00' (keeps any zone suffix)
  return s.replace(/(\d{2}:\d{2}:\d{2})\.(\d+)/, (_m, hms: string, f: string) => {
    const t = f.replace(/0+$/, '');
    return t ? `${hms}.${t}` : hms;
  });
}

function stableJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
    .join(',')}}`;
}

/** The comparable text of one value, given the column types on both sides. */
export function comparable(a: ColumnSchema | undefined, b: ColumnSchema | undefined, v: ColumnValue): string {
  if (v === null) return '\u0000null';
  const kinds = new Set([a?.type.kind, b?.type.kind]);
  if (typeof v === 'boolean') return v ? '1' : '0';
  if (typeof v === 'number') return normNumber(String(v));
  if (Array.isArray(v)) return JSON.stringify(v);
  if ([...kinds].some((k) => k !== undefined && NUMERIC_KINDS.has(k))) return normNumber(v);
  if (kinds.has('json')) {
    try {
      return stableJson(JSON.parse(v));
    } catch {
      return v;
    }
  }
  // A PostgreSQL timestamptz (canonical UTC, 'Z') lands in a MySQL DATETIME as the same UTC digits.
  if (kinds.has('timestamp')) return normFraction(v.replace(/(?:Z|[+-]00(?::?00)?)$/, ''));
  if (kinds.has('time')) return normFraction(v);
  if (kinds.has('uuid')) return v.toLowerCase();
  return v;
}

export interface ComparePlan {
  /** Columns present on both sides (compared). */
  columns: { name: string; src: ColumnSchema; dst: ColumnSchema }[];
  /** Source columns the replica lacks, and replica columns the source lacks. */
  missingColumns: string[];
  extraColumns: string[];
  key: string[];
}

/** Which columns to compare. Replica-only columns (sink bookkeeping) are listed, not compared. */
export function comparePlan(src: TableSchema, dst: TableSchema): ComparePlan {
  const dstBy = new Map(dst.columns.map((c) => [c.name, c]));
  const srcNames = new Set(src.columns.map((c) => c.name));
  return {
    columns: src.columns.flatMap((c) => {
      const d = dstBy.get(c.name);
      return d ? [{ name: c.name, src: c, dst: d }] : [];
    }),
    missingColumns: src.columns.filter((c) => !dstBy.has(c.name)).map((c) => c.name),
    extraColumns: dst.columns.filter((c) => !srcNames.has(c.name)).map((c) => c.name),
    key: src.primaryKey,
  };
}

export function keyText(plan: ComparePlan, row: Row): string {
  // A keyless table's rows are matched by their whole content.
  if (plan.key.length === 0) return rowText(plan, row);
  const cols = new Map(plan.columns.map((c) => [c.name, c]));
  return JSON.stringify(plan.key.map((k) => comparable(cols.get(k)?.src, cols.get(k)?.dst, row[k] ?? null)));
}

function rowText(plan: ComparePlan, row: Row): string {
  return plan.columns.map((c) => comparable(c.src, c.dst, row[c.name] ?? null)).join('\u0001');
}

/**
 * Order-independent digest of a set of rows: the sum (mod 2^128) of each row's SHA-256 prefix,
 * so the two sides need not return rows in the same order (collations differ across dialects).
 */
export function rowsDigest(plan: ComparePlan, rows: Row[]): string {
  let sum = 0n;
  const mod = 1n << 128n;
  for (const r of rows) {
    const h = createHash('sha256').update(keyText(plan, r)).update('\u0002').update(rowText(plan, r)).digest();
    sum = (sum + BigInt(`0x${h.subarray(0, 16).toString('hex')}`)) % mod;
  }
  return `${rows.length}:${sum.toString(16)}`;
}

export interface RowDiff {
  changed: { key: Row; columns: string[] }[];
  missing: Row[];
  extra: Row[];
}

/** Keys that differ between the two sides of one chunk: changed (with the columns), missing, extra. */
export function diffRows(plan: ComparePlan, src: Row[], dst: Row[]): RowDiff {
  const keyRow = (r: Row): Row => (plan.key.length === 0 ? { ...r } : Object.fromEntries(plan.key.map((k) => [k, r[k] ?? null])));
  // Lists per key text: keyless tables may hold the same row twice.
  const dstBy = new Map<string, Row[]>();
  for (const r of dst) {
    const k = keyText(plan, r);
    const list = dstBy.get(k);
    if (list) list.push(r);
    else dstBy.set(k, [r]);
  }
  const out: RowDiff = { changed: [], missing: [], extra: [] };
  for (const s of src) {
    const k = keyText(plan, s);
    const list = dstBy.get(k);
    const d = list?.pop();
    if (list && list.length === 0) dstBy.delete(k);
    if (!d) {
      out.missing.push(keyRow(s));
      continue;
    }
    const cols = plan.columns.filter((c) => comparable(c.src, c.dst, s[c.name] ?? null) !== comparable(c.src, c.dst, d[c.name] ?? null)).map((c) => c.name);
    if (cols.length > 0) out.changed.push({ key: keyRow(s), columns: cols });
  }
  for (const list of dstBy.values()) for (const d of list) out.extra.push(keyRow(d));
  return out;
}
