import avro from 'avsc';
import { type ColumnType, describeType } from '../column-types.js';
import { TableError } from '../errors.js';
import { type TableSchema, sameType, tableName } from '../table-schema.js';
import { columnConverter } from './columns.js';
import { typeOptions } from './long.js';
import { avroName } from './names.js';

/** One reason a new table version may not follow the previous one. */
export interface Violation {
  column: string;
  /** Short rule name, e.g. 'integer range narrowed'. */
  rule: string;
  /** Human detail: the two source types and what changed. */
  detail: string;
}

function intRange(t: Extract<ColumnType, { kind: 'int' }>): [bigint, bigint] {
  const bits = BigInt(t.bits);
  return t.unsigned ? [0n, 2n ** bits - 1n] : [-(2n ** (bits - 1n)), 2n ** (bits - 1n) - 1n];
}

/**
 * Why `to` cannot replace `from` without losing or reinterpreting values, or null when it is a
 * widening (or no change). Stricter than Avro's own resolution where Avro is blind: int16 ->
 * int8 and varchar(40) -> varchar(20) are the same Avro type but narrow the column; decimal
 * scale changes keep Avro's bytes but change what they mean.
 */
export function narrowing(from: ColumnType, to: ColumnType, dialect: 'postgres' | 'mysql'): string | null {
  if (sameType(from, to)) return null;
  switch (from.kind) {
    case 'int': {
      const [lo, hi] = intRange(from);
      if (to.kind === 'int') {
        const [lo2, hi2] = intRange(to);
        return lo2 <= lo && hi2 >= hi ? null : 'integer range narrowed';
      }
      if (to.kind === 'float') {
        const exactBits = to.bits === 64 ? 53n : 24n;
        const need = BigInt((hi > -lo ? hi : -lo).toString(2).length);
        return need <= exactBits ? null : 'integer to float loses precision';
      }
      return `type change ${from.kind} -> ${to.kind} is not a widening`;
    }
    case 'year':
      // MySQL YEAR holds 1901..2155 (and 0): any 16-bit or wider integer keeps it.
      if (to.kind === 'int') return to.bits >= 16 ? null : 'integer range narrowed';
      return `type change year -> ${to.kind} is not a widening`;
    case 'float':
      if (to.kind === 'float') return to.bits >= from.bits ? null : 'float precision narrowed';
      return `type change float -> ${to.kind} is not a widening`;
    case 'decimal':
      if (to.kind !== 'decimal') return `type change decimal -> ${to.kind} is not a widening`;
      if (from.precision === undefined) return to.precision === undefined ? null : 'unbounded numeric narrowed to a fixed precision';
      if (to.precision === undefined) return 'fixed decimal -> unbounded numeric changes the Avro representation (bytes decimal -> string)';
      if ((to.scale ?? 0) !== (from.scale ?? 0)) return 'decimal scale changed (Avro decimals do not rescale: old values would be misread)';
      return to.precision >= from.precision ? null : 'decimal precision narrowed';
    case 'string':
      if (to.kind !== 'string') return `type change string -> ${to.kind} narrows what the column accepts`;
      if (to.length === undefined) return null;
      return from.length !== undefined && to.length >= from.length ? null : 'string length narrowed';
    case 'bytes':
      if (to.kind !== 'bytes') return `type change bytes -> ${to.kind} is not a widening`;
      if (to.length === undefined) return null;
      return from.length !== undefined && to.length >= from.length ? null : 'binary length narrowed';
    case 'enum':
      if (to.kind === 'enum') {
        const removed = from.values.filter((v) => !to.values.includes(v));
        return removed.length === 0 ? null : `enum values removed: ${removed.join(', ')}`;
      }
      return to.kind === 'string' ? null : `type change enum -> ${to.kind} is not a widening`;
    case 'set':
      if (to.kind === 'set') {
        const removed = from.values.filter((v) => !to.values.includes(v));
        return removed.length === 0 ? null : `set members removed: ${removed.join(', ')}`;
      }
      return to.kind === 'string' ? null : `type change set -> ${to.kind} is not a widening`;
    case 'bit':
      if (to.kind === 'bit') return to.length >= from.length ? null : 'bit length narrowed';
      return to.kind === 'string' ? null : `type change bit -> ${to.kind} is not a widening`;
    case 'json':
    case 'uuid':
    case 'interval':
    case 'unknown':
      return to.kind === 'string' && to.length === undefined ? null : `type change ${from.kind} -> ${to.kind} is not a widening`;
    case 'date':
    case 'bool':
      return `type change ${from.kind} -> ${to.kind} is not a widening`;
    case 'time':
    case 'timestamp': {
      if (to.kind !== from.kind) return `type change ${from.kind} -> ${to.kind} is not a widening`;
      const t = to as typeof from;
      if (Boolean(t.tz) !== Boolean(from.tz)) return 'time zone semantics changed (local <-> UTC instant)';
      // Without a declared precision PostgreSQL keeps microseconds, MySQL whole seconds.
      const dflt = dialect === 'postgres' ? 6 : 0;
      return (t.precision ?? dflt) >= (from.precision ?? dflt) ? null : 'fractional seconds precision narrowed';
    }
    case 'array':
      if (to.kind !== 'array') return `type change array -> ${to.kind} is not a widening`;
      if ((to.dims ?? 1) !== (from.dims ?? 1)) return 'array dimensions changed';
      return narrowing(from.element, to.element, dialect);
  }
}

/** Can data written with the column's old Avro type be read with the new one (Avro resolution)? */
function avroResolves(from: ColumnType, to: ColumnType, dialect: 'postgres' | 'mysql', field: string): string | null {
  try {
    const w = avro.Type.forSchema(['null', columnConverter(from, dialect, field, 'cdc.check').avro] as avro.Schema, typeOptions());
    const r = avro.Type.forSchema(['null', columnConverter(to, dialect, field, 'cdc.check').avro] as avro.Schema, typeOptions());
    r.createResolver(w);
    return null;
  } catch (err) {
    return `Avro cannot read the old type as the new one (${(err as Error).message})`;
  }
}

/**
 * Violations of our BACKWARD rules from `prev` to `next`, matched by column name: added and
 * dropped columns and nullability changes are always fine (every row field is optional);
 * a column whose type changed must widen (text-like kinds may widen to unbounded text).
 */
export function checkEvolution(prev: TableSchema, next: TableSchema): Violation[] {
  const out: Violation[] = [];
  const prevByName = new Map(prev.columns.map((c) => [c.name, c]));
  for (const c of next.columns) {
    const old = prevByName.get(c.name);
    if (!old) continue;
    const detail = `${old.sourceType} -> ${c.sourceType} (${describeType(old.type)} -> ${describeType(c.type)})`;
    const rule = narrowing(old.type, c.type, next.dialect) ?? avroResolves(old.type, c.type, next.dialect, avroName(c.name));
    if (rule !== null) out.push({ column: c.name, rule, detail });
  }
  return out;
}

/** A schema change refused under BACKWARD compatibility: the table stops, the others go on. */
export class SchemaIncompatibleError extends TableError {
  readonly subject: string;
  readonly violations: Violation[];
  constructor(table: TableSchema, subject: string, violations: Violation[], registryMessages: string[] = []) {
    const what =
      violations.length > 0
        ? violations.map((v) => `column "${v.column}" ${v.detail}: ${v.rule}`).join('; ')
        : `the registry found it incompatible${registryMessages.length > 0 ? `: ${registryMessages.join('; ')}` : ''}`;
    super(
      tableName(table.id),
      `schema change of table ${tableName(table.id)} refused (subject ${subject}, compatibility BACKWARD): ${what}. ` +
        'The table is stopped and its events are parked; the other tables go on. To accept the change, ' +
        `set the subject's compatibility to NONE (PUT /config/${subject}) and replay the parked events.`,
      { code: 'SCHEMA_INCOMPATIBLE' },
    );
    this.name = 'SchemaIncompatibleError';
    this.subject = subject;
    this.violations = violations;
  }
}
