import { type ChangeEvent, eventKey, eventOldKey } from '../schemas/change-event.js';
import { type ColumnValue, isUnchanged, type Row } from '../schemas/column-types.js';
import { schemaFingerprint, tableName, type TableId, type TableSchema } from '../schemas/table-schema.js';
import { compareVersions, type RowVersion, versionOf } from './conflict/version.js';
import type { SinkChange } from './sink.js';

/**
 * Batch planning, pure: turns an ordered list of changes into, per table, the final operation per
 * key (PeerDB's per-batch dedup), so the replica gets one multi-row upsert and one multi-row
 * delete per table instead of one statement per change.
 *
 * The result equals applying the changes one by one:
 * - per key the newest version wins (or the last arrival when versions are not compared);
 * - an update that changes the key is a delete of the old key plus an upsert of the new one;
 * - unchanged-TOAST placeholders are filled from an earlier image of the same row in the batch,
 *   else left for the replica to keep its value;
 * - a truncate drops every earlier (older) operation of its table and bounds the replica's rows.
 */

/** The final operation on one key. */
export interface KeyOp {
  kind: 'upsert' | 'delete';
  key: Row;
  keyText: string;
  /** Upsert: full row, may hold UNCHANGED placeholders. Delete: null. */
  row: Row | null;
  version: RowVersion;
  /** The change that produced this operation (dead-lettered if the operation is refused). */
  change: SinkChange;
  /** Delete of the old key of a key-changing update (its other changes live in another partition). */
  crossKey: boolean;
  /**
   * Upsert produced by a key change whose row still holds UNCHANGED placeholders: those columns
   * are taken from the replica's row under this old key. `offset`: the key change's record (the
   * changes before it do not need that row).
   */
  copyFrom: { key: Row; keyText: string; offset: string } | null;
}

/** Operations of tables without a key, kept in order (no dedup is possible). */
export type KeylessOp =
  | { kind: 'insert'; row: Row; version: RowVersion; change: SinkChange }
  | { kind: 'delete'; row: Row; version: RowVersion; change: SinkChange }
  | { kind: 'update'; before: Row; row: Row; version: RowVersion; change: SinkChange }
  | { kind: 'truncate'; version: RowVersion; change: SinkChange };

/** A newer in-batch change made an older one pointless (versioned resolution only). */
export interface InBatchConflict {
  kept: KeyOp;
  dropped: { kind: 'upsert' | 'delete'; row: Row | null; version: RowVersion; change: SinkChange };
}

export interface TablePlan {
  id: TableId;
  /** `tableName(id)`. */
  name: string;
  /** Schema of the last change of this table in the batch. */
  schema: TableSchema;
  /** Every distinct schema seen for the table, in arrival order. */
  schemas: TableSchema[];
  keyed: boolean;
  /** Final operation per key text, in first-touched order. */
  ops: Map<string, KeyOp>;
  keyless: KeylessOp[];
  /** Newest truncate of the batch (keyed tables); operations older than it are already dropped. */
  truncate: { version: RowVersion; change: SinkChange } | null;
  /** True when the batch deletes keys whose other changes live in other partitions, or truncates. */
  crossPartition: boolean;
  /** Changes that produced no operation of their own (merged, superseded, duplicate). */
  superseded: number;
  /** The table's changes in arrival order (applied one by one to isolate a poison change). */
  changes: SinkChange[];
  conflicts: InBatchConflict[];
}

/**
 * Text that identifies a key within a table. Numbers and numeric strings of the same value give
 * the same text, so a key survives a type widening (int4 `1` → int8 `"1"`).
 */
export function keyText(key: Row, columns: readonly string[]): string {
  if (columns.length === 1) {
    // The common single-column key without the array (same text as below, which tombstone hashes depend on).
    const v = key[columns[0]!] ?? null;
    if (typeof v === 'number') return `["${v}"]`;
    if (typeof v === 'string') return `[${JSON.stringify(v)}]`;
  }
  return JSON.stringify(columns.map((c) => normaliseKeyValue(key[c] ?? null)));
}

function normaliseKeyValue(v: ColumnValue): ColumnValue {
  if (typeof v === 'number') return String(v);
  if (Array.isArray(v)) return v.map(normaliseKeyValue);
  return v;
}

export interface PlanOptions {
  /** Compare versions (LWW); false applies in arrival order. */
  versioned: boolean;
}

/** Fills the UNCHANGED columns of `row` from `prev` (an earlier full image of the same row). */
export function mergeUnchanged(row: Row, prev: Row | null): Row {
  if (prev === null) return row;
  let out: Row | null = null;
  for (const k in row) {
    if (isUnchanged(row[k]) && k in prev && !isUnchanged(prev[k])) {
      out ??= { ...row };
      out[k] = prev[k] ?? null;
    }
  }
  return out ?? row;
}

export function hasUnchanged(row: Row): boolean {
  for (const k in row) if (isUnchanged(row[k])) return true;
  return false;
}

/** Groups changes by table and reduces each table's changes to their final operations. */
export function planBatch(changes: readonly SinkChange[], o: PlanOptions): TablePlan[] {
  const plans = new Map<string, TablePlan>();
  for (const change of changes) {
    const e = change.event;
    const name = tableName(e.schema.id);
    let plan = plans.get(name);
    if (!plan) {
      plan = {
        id: e.schema.id,
        name,
        schema: e.schema,
        schemas: [],
        keyed: e.schema.primaryKey.length > 0,
        ops: new Map(),
        keyless: [],
        truncate: null,
        crossPartition: false,
        superseded: 0,
        conflicts: [],
        changes: [],
      };
      plans.set(name, plan);
    }
    plan.changes.push(change);
    if (plan.schema !== e.schema) plan.schema = e.schema;
    if (!plan.schemas.some((s) => s === e.schema || schemaFingerprint(s) === schemaFingerprint(e.schema))) plan.schemas.push(e.schema);
    if (plan.keyed && e.schema.primaryKey.length > 0) addKeyed(plan, change, o);
    else addKeyless(plan, change);
  }
  return [...plans.values()];
}

function addKeyless(plan: TablePlan, change: SinkChange): void {
  const e = change.event;
  const version = versionOf(e);
  switch (e.op) {
    case 'c':
    case 'r':
      if (e.after) plan.keyless.push({ kind: 'insert', row: e.after, version, change });
      break;
    case 'u':
      if (e.after && e.before) plan.keyless.push({ kind: 'update', before: e.before, row: e.after, version, change });
      else if (e.after) plan.keyless.push({ kind: 'insert', row: e.after, version, change });
      break;
    case 'd':
      if (e.before) plan.keyless.push({ kind: 'delete', row: e.before, version, change });
      break;
    case 't':
      plan.keyless.push({ kind: 'truncate', version, change });
      plan.crossPartition = true;
      break;
  }
}

function addKeyed(plan: TablePlan, change: SinkChange, o: PlanOptions): void {
  const e = change.event;
  const version = versionOf(e);
  const pk = e.schema.primaryKey;

  if (e.op === 't') {
    plan.crossPartition = true;
    if (plan.truncate && compareVersions(plan.truncate.version, version) >= 0 && o.versioned) {
      plan.superseded++;
      return;
    }
    plan.truncate = { version, change };
    // Everything older than the truncate is gone after it.
    for (const [k, op] of plan.ops) {
      if (!o.versioned || compareVersions(op.version, version) < 0) {
        plan.ops.delete(k);
        plan.superseded++;
      }
    }
    return;
  }

  const key = eventKey(e);
  if (key === null) {
    plan.superseded++;
    return;
  }
  const text = keyText(key, pk);

  if (e.op === 'd') {
    put(plan, { kind: 'delete', key, keyText: text, row: null, version, change, crossKey: false, copyFrom: null }, o);
    return;
  }
  const after = e.after;
  if (after === null) {
    plan.superseded++;
    return;
  }
  const oldKey = e.op === 'u' ? eventOldKey(e) : null;
  if (oldKey !== null && !sameKey(oldKey, key, pk)) {
    const oldText = keyText(oldKey, pk);
    const oldOp = plan.ops.get(oldText);
    // Unchanged columns come from the old row: its in-batch image, else the replica's row.
    const prevImage = oldOp && oldOp.kind === 'upsert' && (!o.versioned || compareVersions(oldOp.version, version) < 0) ? oldOp.row : null;
    const row = mergeUnchanged(after, prevImage ?? (e.before && !hasUnchanged(e.before) ? e.before : null));
    // Still missing columns: they are in the replica's row, under the old key, or, when the old
    // key's image here came from an earlier key change of this batch, under that one's old key.
    const copyFrom = !hasUnchanged(row) ? null : prevImage !== null && oldOp?.copyFrom ? oldOp.copyFrom : { key: oldKey, keyText: oldText, offset: change.ref.offset };
    plan.crossPartition = true;
    put(plan, { kind: 'delete', key: oldKey, keyText: oldText, row: null, version, change, crossKey: true, copyFrom: null }, o);
    put(plan, { kind: 'upsert', key, keyText: text, row, version, change, crossKey: false, copyFrom }, o);
    return;
  }
  put(plan, { kind: 'upsert', key, keyText: text, row: after, version, change, crossKey: false, copyFrom: null }, o);
}

/** Key equality by value (`keyChanged` compares JSON texts; this runs per update). */
function sameKey(a: Row, b: Row, pk: readonly string[]): boolean {
  for (const c of pk) {
    const x = a[c] ?? null;
    const y = b[c] ?? null;
    if (x === y) continue;
    if (x === null || y === null || typeof x === 'object' || typeof y === 'object') {
      if (JSON.stringify(x) !== JSON.stringify(y)) return false;
      continue;
    }
    // A number and its decimal string are the same key value (int widening).
    if (String(x) !== String(y)) return false;
  }
  return true;
}

/** Records `op` as the key's operation unless the key already holds a newer one. */
function put(plan: TablePlan, op: KeyOp, o: PlanOptions): void {
  if (plan.truncate && o.versioned && compareVersions(op.version, plan.truncate.version) < 0) {
    // Older than a truncate of this batch: the truncate removed it (out-of-order arrival).
    plan.superseded++;
    return;
  }
  const prev = plan.ops.get(op.keyText);
  if (prev === undefined) {
    plan.ops.set(op.keyText, op);
    return;
  }
  if (o.versioned) {
    const c = compareVersions(op.version, prev.version);
    if (c === 0 && prev.change !== op.change) {
      // The same change again (replayed record, source duplicate).
      plan.superseded++;
      return;
    }
    if (c < 0) {
      plan.superseded++;
      plan.conflicts.push({ kept: prev, dropped: { kind: op.kind, row: op.row, version: op.version, change: op.change } });
      return;
    }
  }
  plan.superseded++;
  if (op.kind === 'upsert' && prev.kind === 'upsert' && op.row !== null) {
    const merged = mergeUnchanged(op.row, prev.row);
    // The earlier image may itself wait for the replica's old row (key change + unchanged columns).
    const copyFrom = hasUnchanged(merged) ? (op.copyFrom ?? prev.copyFrom) : null;
    op = { ...op, row: merged, copyFrom };
  }
  // Keep the key's first-touched position so statement order stays stable.
  plan.ops.set(op.keyText, op);
}

/** Counts for metrics: operations per kind in a plan. */
export function planSize(p: TablePlan): { upserts: number; deletes: number; keyless: number } {
  let upserts = 0;
  let deletes = 0;
  for (const op of p.ops.values()) op.kind === 'upsert' ? upserts++ : deletes++;
  return { upserts, deletes, keyless: p.keyless.length };
}

/** Events of a plan, for error messages. */
export function describeChange(e: ChangeEvent): string {
  return `${e.op} on ${tableName(e.schema.id)}`;
}
