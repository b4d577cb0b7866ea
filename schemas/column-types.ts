/**
 * Neutral column types. Every source dialect maps its types into these, every sink dialect maps
 * out of them, so PostgreSQL -> MariaDB and MariaDB -> PostgreSQL need no pairwise code.
 *
 * Each kind also fixes the canonical *value* representation used inside a {@link ChangeEvent}.
 * Values are always JSON-safe, so an event survives `JSON.stringify`/`JSON.parse` unchanged and
 * two events can be compared with deep equality. Precision is never given to a JS float:
 *
 * | kind        | canonical value                                                              |
 * |-------------|------------------------------------------------------------------------------|
 * | bool        | `true` / `false`                                                             |
 * | int         | `number` when bits <= 32 (incl. unsigned 32), else a decimal `string`       |
 * | float       | `number`, or the strings `'NaN'`, `'Infinity'`, `'-Infinity'`                |
 * | decimal     | decimal `string` exactly as the source printed it (`'NaN'` allowed for PG)   |
 * | string      | `string`                                                                     |
 * | bytes       | base64 `string`                                                              |
 * | uuid        | lower-case `string`                                                          |
 * | json        | the JSON document as text (`string`), byte for byte as the source gave it    |
 * | date        | `'YYYY-MM-DD'` (years beyond 9999 / BC as the source prints them), `'infinity'`, `'-infinity'`, MySQL `'0000-00-00'` |
 * | time        | `'HH:MM:SS[.ffffff]'`, with `'+HH[:MM]'` offset when `tz`                    |
 * | timestamp   | `'YYYY-MM-DDTHH:MM:SS[.ffffff]'`; with `tz` always UTC and suffixed `'Z'`; `'infinity'`/`'-infinity'` |
 * | interval    | ISO 8601 duration `string` (`'P1Y2M3DT4H5M6.5S'`)                           |
 * | enum        | `string` (the label)                                                         |
 * | set         | `string` of comma-separated members (MySQL's own text form)                  |
 * | bit         | `string` of `'0'`/`'1'` characters, most significant first                   |
 * | year        | `number`                                                                     |
 * | array       | JSON array of canonical element values (nested for multi-dimensional)       |
 * | unknown     | the source's text form (`string`)                                            |
 */
export type ColumnType =
  | { kind: 'bool' }
  | { kind: 'int'; bits: 8 | 16 | 24 | 32 | 64; unsigned?: boolean }
  | { kind: 'float'; bits: 32 | 64 }
  | { kind: 'decimal'; precision?: number; scale?: number }
  | { kind: 'string'; length?: number; fixed?: boolean; charset?: string }
  | { kind: 'bytes'; length?: number; fixed?: boolean }
  | { kind: 'uuid' }
  | { kind: 'json' }
  | { kind: 'date' }
  | { kind: 'time'; precision?: number; tz?: boolean }
  | { kind: 'timestamp'; precision?: number; tz: boolean }
  | { kind: 'interval' }
  | { kind: 'enum'; values: string[]; name?: string }
  | { kind: 'set'; values: string[] }
  | { kind: 'bit'; length: number }
  | { kind: 'year' }
  | { kind: 'array'; element: ColumnType; dims?: number }
  | { kind: 'unknown' };

export type ColumnKind = ColumnType['kind'];

/** A canonical column value, see the table on {@link ColumnType}. */
export type ColumnValue = null | boolean | number | string | ColumnValue[];

/** A row keyed by column name. */
export type Row = Record<string, ColumnValue>;

/**
 * Placeholder for a column whose value the source did not send because it did not change
 * (PostgreSQL TOAST without REPLICA IDENTITY FULL). Sinks must leave the replica's current value
 * in place for such a column; they never write this string. Same idea as Debezium's
 * `unavailable.value.placeholder`.
 */
export const UNCHANGED = '__cdc_unchanged_toast_value__';

/** True when the value is the {@link UNCHANGED} placeholder. */
export function isUnchanged(v: ColumnValue | undefined): boolean {
  return v === UNCHANGED;
}

/** Does a value of this kind always fit a JS number exactly? */
export function isNumberKind(t: ColumnType): boolean {
  if (t.kind === 'int') return t.bits <= 32;
  return t.kind === 'year';
}

/** A short human-readable form of a type, for logs and error messages. */
export function describeType(t: ColumnType): string {
  switch (t.kind) {
    case 'int':
      return `int${t.bits}${t.unsigned ? ' unsigned' : ''}`;
    case 'float':
      return `float${t.bits}`;
    case 'decimal':
      return t.precision === undefined ? 'decimal' : `decimal(${t.precision},${t.scale ?? 0})`;
    case 'string':
      return t.length === undefined ? 'string' : `${t.fixed ? 'char' : 'varchar'}(${t.length})`;
    case 'bytes':
      return t.length === undefined ? 'bytes' : `${t.fixed ? 'binary' : 'varbinary'}(${t.length})`;
    case 'time':
      return `time${t.tz ? ' tz' : ''}`;
    case 'timestamp':
      return `timestamp${t.tz ? ' tz' : ''}`;
    case 'enum':
      return `enum(${t.values.join(',')})`;
    case 'set':
      return `set(${t.values.join(',')})`;
    case 'bit':
      return `bit(${t.length})`;
    case 'array':
      return `${describeType(t.element)}[]`;
    default:
      return t.kind;
  }
}
