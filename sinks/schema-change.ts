import type { ColumnType } from '../schemas/column-types.js';
import type { ColumnSchema } from '../schemas/table-schema.js';

/** Range of an integer type as [min, max] in bigint. */
function intRange(t: Extract<ColumnType, { kind: 'int' }>): [bigint, bigint] {
  const bits = BigInt(t.bits);
  return t.unsigned ? [0n, (1n << bits) - 1n] : [-(1n << (bits - 1n)), (1n << (bits - 1n)) - 1n];
}

/**
 * Whether every value of column type `from` fits `to` unchanged, so the replica column can be
 * altered in place (int4 → int8, varchar(10) → varchar(40), numeric(8,2) → numeric(12,2), an enum
 * or set gaining labels, timestamp(0) → timestamp(6)). Anything else keeps the replica's type.
 */
export function isWideningType(from: ColumnType, to: ColumnType): boolean {
  if (from.kind === 'int' && to.kind === 'int') {
    const [a0, a1] = intRange(from);
    const [b0, b1] = intRange(to);
    return b0 <= a0 && a1 <= b1;
  }
  if (from.kind === 'int' && to.kind === 'decimal') {
    if (to.precision === undefined) return true;
    const digits = intRange(from)[1].toString().length;
    return to.precision - (to.scale ?? 0) >= digits;
  }
  if (from.kind === 'float' && to.kind === 'float') return to.bits >= from.bits;
  if (from.kind === 'decimal' && to.kind === 'decimal') {
    if (to.precision === undefined) return true;
    if (from.precision === undefined) return false;
    const fs = from.scale ?? 0;
    const ts = to.scale ?? 0;
    return ts >= fs && to.precision - ts >= from.precision - fs;
  }
  if (from.kind === 'string' && to.kind === 'string') {
    if (to.length === undefined) return true;
    if (from.length === undefined) return false;
    return to.length >= from.length && (!to.fixed || from.fixed === true);
  }
  if (from.kind === 'bytes' && to.kind === 'bytes') {
    if (to.length === undefined) return true;
    if (from.length === undefined) return false;
    return to.length >= from.length && (!to.fixed || from.fixed === true);
  }
  if ((from.kind === 'time' || from.kind === 'timestamp') && to.kind === from.kind) {
    return (to.tz ?? false) === (from.tz ?? false) && (to.precision ?? 6) >= (from.precision ?? 6);
  }
  if ((from.kind === 'enum' && to.kind === 'enum') || (from.kind === 'set' && to.kind === 'set')) {
    // Labels may only be appended: MySQL stores enum/set values by index.
    return from.values.every((v, i) => to.values[i] === v) && to.values.length >= from.values.length;
  }
  if (from.kind === 'bit' && to.kind === 'bit') return to.length >= from.length;
  if (from.kind === 'string' && to.kind === 'json') return false;
  return false;
}

/**
 * Whether a source column's type change should be applied to the replica. Same dialect: the
 * neutral types must widen (the new source type text is then used verbatim). Cross dialect: the
 * same test on the neutral types.
 */
export function isWidening(from: ColumnSchema, to: ColumnSchema, sameDialect: boolean): boolean {
  void sameDialect;
  return isWideningType(from.type, to.type);
}
