import crypto from 'node:crypto';
import { type ColumnValue, isUnchanged, type Row, UNCHANGED } from '../schemas/column-types.js';
import { PoisonRecordError } from '../schemas/errors.js';
import { type ColumnSchema, diffSchemas, sameType, schemaFingerprint, type TableId, tableName, type TableSchema } from '../schemas/table-schema.js';
import type { Logger } from '../util/log.js';
import { counter, histogram } from '../util/metrics.js';
import { type KeyOp, type KeylessOp, planBatch, type TablePlan } from './apply.js';
import type { ConflictKind, ConflictResolver, LocalState } from './conflict/types.js';
import { compareVersions, type RowVersion } from './conflict/version.js';
import {
  type Binding,
  type ColumnDef,
  type ConflictRow,
  HIDDEN_COLUMNS,
  type QualifiedName,
  type ReplicaColumn,
  type ReplicaTable,
  type SqlDialect,
  type SqlQuery,
  VERSION_COLUMNS,
} from './dialect.js';
import { DataError, NameError, OffsetFenceError, OldRowPendingError, StaleSchemaError } from './errors.js';
import { isWidening } from './schema-change.js';
import type { SqlPool, SqlSession } from './session.js';
import type { ApplyHooks, ApplyResult, DeadLetter, Lease, OffsetAdvance, Sink, SinkBatch, SinkChange, SinkTransaction } from './sink.js';
import { partitionKey } from './sink.js';

export interface ReplicaSinkOptions {
  name: string;
  kind: 'postgres' | 'mysql';
  dialect: SqlDialect;
  pool: SqlPool;
  /** Maps a source table to its replica table. */
  mapName(id: TableId): QualifiedName;
  /** Schema (PostgreSQL) / database (MySQL) of the sink's own tables. */
  metaSchema: string;
  dropColumns: 'drop' | 'keep';
  resolver: ConflictResolver;
  tombstoneHorizonDays: number;
  logConflicts: boolean;
  log: Logger;
  /** Rows per statement. @defaultValue 2000 */
  statementRows?: number;
  /** SQL run at the start of every replica transaction (PostgreSQL: `SET LOCAL synchronous_commit = off`). */
  beginSql?: string[];
}

const rowsWritten = counter('cdc_sink_rows_total', 'Row operations written to replicas', ['sink', 'op']);
const skippedTotal = counter('cdc_sink_skipped_total', 'Changes superseded in a batch, duplicates, or refused by conflict resolution', ['sink']);
const conflictsTotal = counter('cdc_sink_conflicts_total', 'Conflicts detected by the sink conflict resolver', ['sink', 'kind']);
const deadTotal = counter('cdc_sink_dead_letters_total', 'Changes sent to the dead-letter topic', ['sink', 'code']);
const applySeconds = histogram('cdc_sink_apply_seconds', 'Replica transaction duration', ['sink'], [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);

interface TableState {
  name: QualifiedName;
  /** Key in the sink's `tables` / `tombstones`. */
  tbl: string;
  replica: ReplicaTable;
  /** Last schema recorded in the `tables` row. */
  recorded: TableSchema | null;
}

interface PlanOutcome {
  written: number;
  skipped: number;
  conflicts: ConflictRow[];
  dead: DeadLetter[];
  /** Per-op kinds for metrics. */
  upserts: number;
  deletes: number;
}

const emptyOutcome = (): PlanOutcome => ({ written: 0, skipped: 0, conflicts: [], dead: [], upserts: 0, deletes: 0 });

function mergeOutcome(a: PlanOutcome, b: PlanOutcome): void {
  a.written += b.written;
  a.skipped += b.skipped;
  a.conflicts.push(...b.conflicts);
  a.dead.push(...b.dead);
  a.upserts += b.upserts;
  a.deletes += b.deletes;
}

/** No unchanged columns (shared; never pushed to). */
const NONE: string[] = [];

/** The horizon tombstone key: a truncate bounds every key of the table. */
const ALL_KEYS = '*';

/** One-shot hashing (Node >= 20.12) costs a fifth of a Hash object per call; this runs per key of every batch. */
const sha256Hex: (text: string) => string =
  typeof (crypto as { hash?: unknown }).hash === 'function' ? (text) => crypto.hash('sha256', text, 'hex') : (text) => crypto.createHash('sha256').update(text).digest('hex');

export function tombstoneHash(keyText: string): string {
  return sha256Hex(keyText).slice(0, 40);
}

function storedVersion(r: Record<string, unknown>): RowVersion {
  return { tsUs: BigInt(String(r.ts)), origin: String(r.origin), order: String(r.ord) };
}

const maxVersion = (a: RowVersion | null, b: RowVersion | null): RowVersion | null => (a === null ? b : b === null ? a : compareVersions(a, b) >= 0 ? a : b);

function chunks<T>(items: T[], size: number): T[][] {
  if (items.length <= size) return items.length === 0 ? [] : [items];
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function deadLetterFor(change: SinkChange, err: unknown): DeadLetter {
  const e = err as Error & { code?: string; sqlCode?: string };
  const code = err instanceof NameError ? 'NAME' : err instanceof DataError ? `SQL_${e.sqlCode}` : err instanceof PoisonRecordError ? 'TYPE_MISMATCH' : 'APPLY';
  return { ref: change.ref, reason: e.message ?? String(err), code };
}

const isPoison = (err: unknown): boolean => err instanceof DataError || err instanceof PoisonRecordError;

/**
 * The sink for SQL replicas (both dialects): plans each batch (sinks/apply.ts), reads the replica's
 * versions of the batch's keys, lets the conflict resolver decide per key, then writes one
 * multi-row delete and one multi-row upsert per table, the tombstones, the conflicts and the new
 * offsets, all in one replica transaction.
 *
 * Concurrency: batches of one table from different partitions run in parallel under a shared
 * lock on the table's bookkeeping row; a batch that deletes keys living in other partitions (key
 * changes) or truncates takes that lock exclusively, so its reads and writes of those keys cannot
 * interleave with another worker's. Two workers applying the same partition (a zombie after a
 * rebalance) are stopped by the offset fence.
 */
export function createReplicaSink(o: ReplicaSinkOptions): Sink {
  const d = o.dialect;
  const meta = o.metaSchema;
  const rowsPerStatement = o.statementRows ?? 2000;
  const log = o.log;
  const tables = new Map<string, TableState>();
  let started = false;

  const q = (s: SqlSession, query: SqlQuery | string) => s.query(query);

  // ---------------------------------------------------------------------------------------------
  // Replica tables
  // ---------------------------------------------------------------------------------------------

  function tblKey(n: QualifiedName): string {
    return JSON.stringify([n.schema, n.table]);
  }

  function checkNames(n: QualifiedName, schemas: TableSchema[]): void {
    for (const [what, id] of [
      ['schema', n.schema],
      ['table', n.table],
    ] as const) {
      const p = d.identifierProblem(id);
      if (p) throw new NameError(`replica ${what} ${JSON.stringify(id)}: ${p}`);
    }
    for (const s of schemas)
      for (const c of s.columns) {
        const p = d.identifierProblem(c.name);
        if (p) throw new NameError(`column ${JSON.stringify(c.name)} of ${tableName(s.id)}: ${p}`);
        if (HIDDEN_COLUMNS.includes(c.name)) throw new NameError(`column ${JSON.stringify(c.name)} of ${tableName(s.id)} collides with the sink's version column`);
      }
  }

  async function introspect(s: SqlSession, n: QualifiedName): Promise<ReplicaTable | null> {
    const r = await q(s, d.introspect(n));
    if (r.rows.length === 0) return null;
    const columns = new Map<string, ReplicaColumn>();
    const pk: { name: string; pos: number }[] = [];
    for (const row of r.rows) {
      const name = String(row.name);
      const nullable = row.nullable === true || row.nullable === 1 || row.nullable === '1' || row.nullable === 'YES' || row.nullable === 't';
      columns.set(name, {
        name,
        type: String(row.type),
        nullable,
        charset: row.charset === null || row.charset === undefined ? null : String(row.charset),
        collation: row.collation === null || row.collation === undefined ? null : String(row.collation),
      });
      if (row.pk_position !== null && row.pk_position !== undefined) pk.push({ name, pos: Number(row.pk_position) });
    }
    pk.sort((a, b) => a.pos - b.pos);
    return { name: n, columns, primaryKey: pk.map((p) => p.name) };
  }

  /** Union of the columns of several schema versions, latest order first. */
  function unionColumns(schemas: TableSchema[]): ColumnSchema[] {
    const latest = schemas[schemas.length - 1]!;
    const out = [...latest.columns];
    const seen = new Set(out.map((c) => c.name));
    for (const s of schemas) for (const c of s.columns) if (!seen.has(c.name)) (out.push(c), seen.add(c.name));
    return out;
  }

  function columnDef(c: ColumnSchema, s: TableSchema, forCreate: boolean): ColumnDef {
    const key = s.primaryKey.includes(c.name);
    const def: ColumnDef = {
      name: c.name,
      type: d.columnType(c, s.dialect, { key, keyColumns: s.primaryKey.length }),
      // New columns are nullable: rows already in the replica have no value for them.
      nullable: key ? false : forCreate ? c.nullable : true,
    };
    const lit = d.defaultLiteral(c, s.dialect);
    if (lit !== undefined && !key) def.defaultLiteral = lit;
    return def;
  }

  /** Verbatim source types the replica does not know (user-defined types) fall back to the neutral map. */
  async function resolveTypes(s: SqlSession, defs: { def: ColumnDef; col: ColumnSchema; schema: TableSchema }[]): Promise<void> {
    if (!d.unknownTypes) return;
    const verbatim = defs.filter((x) => x.schema.dialect === d.kind);
    if (verbatim.length === 0) return;
    const r = await q(s, d.unknownTypes([...new Set(verbatim.map((x) => x.def.type))]));
    const unknown = new Set(r.rows.map((row) => String(row.type)));
    if (unknown.size === 0) return;
    for (const x of verbatim) {
      if (!unknown.has(x.def.type)) continue;
      const fallback = d.columnType(x.col, x.schema.dialect === 'postgres' ? 'mysql' : 'postgres', { key: x.schema.primaryKey.includes(x.col.name), keyColumns: x.schema.primaryKey.length });
      log.warn({ table: tableName(x.schema.id), column: x.col.name, type: x.def.type, fallback }, 'source type unknown on the replica; using the neutral mapping');
      x.def.type = fallback;
    }
  }

  /** Runs DDL, tolerating a concurrent worker having done the same (duplicate column / table). */
  async function ddl(s: SqlSession, query: SqlQuery, inTx: boolean): Promise<void> {
    if (inTx) await q(s, d.savepoint('cdc_ddl'));
    try {
      await q(s, query);
      if (inTx) await q(s, d.release('cdc_ddl'));
    } catch (err) {
      if (inTx) await q(s, d.rollbackTo('cdc_ddl'));
      const code = (err as { cause?: { code?: string; errno?: number } }).cause;
      // 42P07/42701/42710 (PostgreSQL) and 1050/1060 (MySQL): someone created it first. 23505: a
      // concurrent CREATE TABLE IF NOT EXISTS raced on the catalog.
      if (code && (['42P07', '42701', '42710', '23505', '42P06'].includes(String(code.code)) || [1050, 1060, 1007].includes(Number(code.errno)))) return;
      throw err;
    }
  }

  async function loadState(s: SqlSession, n: QualifiedName): Promise<TableState> {
    const tbl = tblKey(n);
    const replica = await introspect(s, n);
    let recorded: TableSchema | null = null;
    if (replica) {
      const r = await q(s, d.readTable(meta, tbl));
      const text = r.rows[0]?.schema_json;
      if (text !== undefined && text !== null) recorded = JSON.parse(String(text)) as TableSchema;
    }
    return { name: n, tbl, replica: replica ?? { name: n, columns: new Map(), primaryKey: [] }, recorded };
  }

  /**
   * Makes the replica table fit every schema of the plan: creates it, adds missing columns,
   * widens types, relaxes NOT NULL where rows will lack the column. Drops happen after the commit.
   */
  async function ensureTable(s: SqlSession, plan: TablePlan, inTx: boolean): Promise<TableState> {
    const n = o.mapName(plan.id);
    checkNames(n, plan.schemas);
    const key = tblKey(n);
    let st = tables.get(key);
    if (!st) {
      st = await loadState(s, n);
      tables.set(key, st);
    }
    const latest = plan.schema;
    if (st.replica.columns.size === 0) {
      const cols = unionColumns(plan.schemas);
      const defs = cols.map((c) => ({ def: columnDef(c, latest, true), col: c, schema: latest }));
      await resolveTypes(s, defs);
      await ddl(s, d.createSchema(n.schema), inTx);
      await ddl(s, d.createTable(n, [...defs.map((x) => x.def), ...d.versionColumnDefs()], latest.primaryKey), inTx);
      await q(s, d.registerTable(meta, key, JSON.stringify(latest)));
      log.info({ table: d.qualified(n) }, 'created replica table');
      st.replica = (await introspect(s, n)) ?? st.replica;
      st.recorded = latest;
      if (st.replica.columns.size === 0) throw new StaleSchemaError(`replica table ${d.qualified(n)} missing right after CREATE`);
      return st;
    }

    let changed = false;
    const adds: { def: ColumnDef; col: ColumnSchema; schema: TableSchema }[] = [];
    for (const schema of plan.schemas)
      for (const c of schema.columns)
        if (!st.replica.columns.has(c.name) && !adds.some((a) => a.col.name === c.name)) adds.push({ def: columnDef(c, schema, false), col: c, schema });
    if (adds.length > 0) await resolveTypes(s, adds);
    for (const a of adds) {
      await ddl(s, d.addColumn(n, a.def), inTx);
      log.info({ table: d.qualified(n), column: a.col.name, type: a.def.type }, 'added replica column');
      changed = true;
    }
    for (const v of d.versionColumnDefs()) {
      if (!st.replica.columns.has(v.name)) {
        await ddl(s, d.addColumn(n, v), inTx);
        changed = true;
      }
    }
    // Type widening and nullability, judged on the neutral types of the recorded and new schemas.
    let prev = st.recorded;
    for (const schema of plan.schemas) {
      if (prev !== null) {
        for (const delta of diffSchemas(prev, schema)) {
          if (delta.change === 'alter-type') {
            const col = st.replica.columns.get(delta.to.name);
            if (!col) continue;
            // Same neutral type, other spelling (sources of both dialects feeding one table, as in a
            // mesh): the column already fits; an ALTER would only take the table's exclusive lock.
            if (schema.dialect !== prev.dialect && sameType(delta.from.type, delta.to.type)) continue;
            if (isWidening(delta.from, delta.to, schema.dialect === d.kind)) {
              const def = columnDef(delta.to, schema, false);
              def.nullable = col.nullable;
              await ddl(s, d.alterColumnType(n, def), inTx);
              log.info({ table: d.qualified(n), column: delta.to.name, from: delta.from.sourceType, to: delta.to.sourceType }, 'widened replica column');
              changed = true;
            } else {
              log.warn({ table: d.qualified(n), column: delta.to.name, from: delta.from.sourceType, to: delta.to.sourceType }, 'source column type changed in a way that is not a widening; replica type kept');
            }
          } else if (delta.change === 'alter-nullability' && delta.to.nullable) {
            const col = st.replica.columns.get(delta.to.name);
            if (col && !col.nullable && !latest.primaryKey.includes(col.name)) {
              await ddl(s, d.dropNotNull(n, col), inTx);
              changed = true;
            }
          } else if (delta.change === 'alter-key') {
            log.warn({ table: d.qualified(n), from: delta.from, to: delta.to }, 'source key changed; the replica keeps its primary key');
          }
        }
      }
      prev = schema;
    }
    // Columns the source no longer sends must accept the rows that lack them.
    const sent = new Set(latest.columns.map((c) => c.name));
    for (const col of st.replica.columns.values()) {
      if (!sent.has(col.name) && !col.nullable && !HIDDEN_COLUMNS.includes(col.name) && !st.replica.primaryKey.includes(col.name)) {
        await ddl(s, d.dropNotNull(n, col), inTx);
        changed = true;
      }
    }
    if (st.recorded === null) await q(s, d.registerTable(meta, key, JSON.stringify(latest)));
    if (changed) st.replica = (await introspect(s, n)) ?? st.replica;
    return st;
  }

  /** Whether `ensureTable` could run DDL for this plan (conservative: unknown table or new schema). */
  function mayNeedDdl(plan: TablePlan): boolean {
    const st = tables.get(tblKey(o.mapName(plan.id)));
    if (!st || st.replica.columns.size === 0 || st.recorded === null) return true;
    const rec = schemaFingerprint(st.recorded);
    return plan.schemas.some((sch) => schemaFingerprint(sch) !== rec || sch.columns.some((c) => !st.replica.columns.has(c.name)));
  }

  /** After the commit: drop columns the source dropped (when configured) and record the schema. */
  async function finishTables(s: SqlSession, plans: TablePlan[]): Promise<void> {
    for (const plan of plans) {
      const st = tables.get(tblKey(o.mapName(plan.id)));
      if (!st || st.replica.columns.size === 0) continue;
      const latest = plan.schema;
      if (st.recorded !== null && schemaFingerprint(st.recorded) === schemaFingerprint(latest)) continue;
      if (o.dropColumns === 'drop') {
        const sent = new Set(latest.columns.map((c) => c.name));
        const known = new Set((st.recorded?.columns ?? []).map((c) => c.name));
        for (const col of [...st.replica.columns.values()]) {
          // Only columns the sink itself replicated before: a column someone added on the replica stays.
          if (sent.has(col.name) || !known.has(col.name) || HIDDEN_COLUMNS.includes(col.name) || st.replica.primaryKey.includes(col.name)) continue;
          await ddl(s, d.dropColumn(st.name, col.name), false);
          st.replica.columns.delete(col.name);
          log.info({ table: d.qualified(st.name), column: col.name }, 'dropped replica column (dropColumns: drop)');
        }
      }
      await q(s, d.recordSchema(meta, st.tbl, JSON.stringify(latest)));
      st.recorded = latest;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Data
  // ---------------------------------------------------------------------------------------------

  function binding(st: TableState, c: ColumnSchema): Binding {
    const target = st.replica.columns.get(c.name);
    if (!target) throw new StaleSchemaError(`replica table ${d.qualified(st.name)} has no column ${JSON.stringify(c.name)}`);
    return { source: c, target };
  }

  function keyBindings(st: TableState, schema: TableSchema): Binding[] {
    return schema.primaryKey.map((k) => binding(st, schema.columns.find((c) => c.name === k) ?? { name: k, type: { kind: 'unknown' }, nullable: false, sourceType: '' }));
  }

  function keyCells(key: Binding[], row: Row): (string | number | null)[] {
    return key.map((b) => d.toCell(row[b.source.name] ?? null, b.source.type, b.target));
  }

  /** Cells of the keys the replica's key types can hold, with their key texts (same index). */
  function convertibleKeys(key: Binding[], keys: { key: Row; keyText: string }[]): { cells: (string | number | null)[][]; texts: string[] } {
    const cells: (string | number | null)[][] = [];
    const texts: string[] = [];
    for (const k of keys) {
      try {
        cells.push(keyCells(key, k.key));
        texts.push(k.keyText);
      } catch {
        // An unconvertible key fails again (and is dead-lettered) when its row is written.
      }
    }
    return { cells, texts };
  }

  const versionBindings = (st: TableState): Binding[] => [
    binding(st, { name: VERSION_COLUMNS.ts, type: { kind: 'int', bits: 64 }, nullable: false, sourceType: 'bigint' }),
    binding(st, { name: VERSION_COLUMNS.origin, type: { kind: 'string' }, nullable: false, sourceType: 'text' }),
    binding(st, { name: VERSION_COLUMNS.order, type: { kind: 'string' }, nullable: false, sourceType: 'text' }),
  ];
  /** Version values converted for the version columns' replica types (MySQL keeps them binary). */
  function versionCells(vb: Binding[], v: RowVersion): (string | number | null)[] {
    return [d.toCell(v.tsUs.toString(), vb[0]!.source.type, vb[0]!.target), d.toCell(v.origin, vb[1]!.source.type, vb[1]!.target), d.toCell(v.order, vb[2]!.source.type, vb[2]!.target)];
  }

  /** The replica's versions (rows and tombstones) of the given keys. */
  async function readLocal(s: SqlSession, st: TableState, schema: TableSchema, keys: { key: Row; keyText: string }[], withRows: boolean, withTombstones: boolean) {
    const rowVersion = new Map<string, RowVersion>();
    const tombstone = new Map<string, RowVersion>();
    let horizon: RowVersion | null = null;
    const kb = keyBindings(st, schema);
    const byHash = new Map<string, string>();
    const onTombstone = (row: Record<string, unknown>) => {
      const h = String(row.key_hash);
      if (h === ALL_KEYS) horizon = storedVersion(row);
      else {
        const text = byHash.get(h);
        if (text !== undefined) tombstone.set(text, storedVersion(row));
      }
    };
    if (withRows && keys.length > 0) {
      // Row versions and tombstones of each chunk of keys in one statement (the horizon with the first).
      let first = true;
      for (const part of chunks(keys, rowsPerStatement)) {
        const { cells, texts } = convertibleKeys(kb, part);
        const hashes = first ? [ALL_KEYS] : [];
        first = false;
        if (withTombstones) {
          for (const k of part) {
            const h = tombstoneHash(k.keyText);
            byHash.set(h, k.keyText);
            hashes.push(h);
          }
        }
        const r = cells.length > 0 ? await q(s, d.readLocalState(st.name, kb, cells, meta, st.tbl, hashes)) : await q(s, d.readTombstones(meta, st.tbl, hashes));
        for (const row of r.rows) {
          if (cells.length > 0 && Number(row.src) === 0) rowVersion.set(texts[Number(row.i)]!, storedVersion(row));
          else onTombstone(row);
        }
      }
      return { rowVersion, tombstone, horizon: horizon as RowVersion | null };
    }
    const hashes = [ALL_KEYS];
    if (withTombstones) {
      for (const k of keys) {
        const h = tombstoneHash(k.keyText);
        byHash.set(h, k.keyText);
        hashes.push(h);
      }
    }
    for (const part of chunks(hashes, rowsPerStatement)) for (const row of (await q(s, d.readTombstones(meta, st.tbl, part))).rows) onTombstone(row);
    return { rowVersion, tombstone, horizon: horizon as RowVersion | null };
  }

  /** Cells of one upsert row for `columns`; UNCHANGED placeholders become NULL (excluded from the update). */
  function rowCells(columns: Binding[], row: Row, version: RowVersion, vb: Binding[]): (string | number | null)[] {
    const out: (string | number | null)[] = [];
    for (const b of columns) {
      const v: ColumnValue | undefined = row[b.source.name];
      out.push(v === undefined || isUnchanged(v) ? null : d.toCell(v, b.source.type, b.target));
    }
    const v = versionCells(vb, version);
    out.push(v[0]!, v[1]!, v[2]!);
    return out;
  }

  async function applyKeyed(s: SqlSession, st: TableState, plan: TablePlan, out: PlanOutcome, wait: boolean): Promise<void> {
    const versioned = o.resolver.versioned;
    const ops = [...plan.ops.values()];
    const lookup = new Map<string, Row>();
    for (const op of ops) {
      lookup.set(op.keyText, op.key);
      if (op.copyFrom) lookup.set(op.copyFrom.keyText, op.copyFrom.key);
    }
    const anyCopy = ops.some((op) => op.copyFrom !== null);
    const keys = [...lookup].map(([keyText, key]) => ({ key, keyText }));
    const local = await readLocal(s, st, plan.schema, keys, versioned || anyCopy, versioned);
    // Resolvers that merge both sides (version vectors, custom) see the replica's rows.
    const localRows = o.resolver.needsLocalRow ? await readLocalRows(s, st, plan.schema, keys.filter((k) => local.rowVersion.has(k.keyText))) : null;
    let horizon = local.horizon;

    if (plan.truncate && (horizon === null || compareVersions(plan.truncate.version, horizon) > 0)) {
      const v = plan.truncate.version;
      const r = await q(s, d.deleteOlderThan(st.name, v));
      await q(s, d.writeTombstones(meta, st.tbl, [{ hash: ALL_KEYS, keyText: ALL_KEYS, version: v }]));
      horizon = v;
      out.written += r.affected;
      rowsWritten.inc({ sink: o.name, op: 'truncate' });
      for (const [k, rv] of local.rowVersion) if (compareVersions(rv, v) < 0) local.rowVersion.delete(k);
    }

    const deletes: KeyOp[] = [];
    const upserts: { op: KeyOp; row: Row }[] = [];
    const clearTombstones: string[] = [];
    for (const op of ops) {
      if (horizon !== null && compareVersions(op.version, horizon) < 0) {
        out.skipped++;
        continue;
      }
      const rowV = local.rowVersion.get(op.keyText) ?? null;
      const tombV = local.tombstone.get(op.keyText) ?? null;
      const localRow = localRows?.get(op.keyText);
      const state: LocalState = { version: versioned ? maxVersion(rowV, tombV) : null, exists: local.rowVersion.has(op.keyText), ...(localRow ? { row: localRow } : {}) };
      const res = o.resolver.resolve(state, { kind: op.kind, row: op.row, version: op.version, before: op.change.event.before }, { sink: o.name, table: plan.id, key: op.key });
      if (res.conflict) {
        out.conflicts.push(conflictRow(st, op, res.conflict, res.outcome, state));
        conflictsTotal.inc({ sink: o.name, kind: res.conflict });
      }
      switch (res.outcome) {
        case 'local':
          out.skipped++;
          break;
        case 'remote':
          if (op.kind === 'delete') deletes.push(op);
          else upserts.push({ op, row: op.row! });
          if (op.kind === 'upsert' && tombV !== null) clearTombstones.push(op.keyText);
          break;
        case 'row':
          upserts.push({ op: res.version ? { ...op, version: res.version } : op, row: res.row });
          if (tombV !== null) clearTombstones.push(op.keyText);
          break;
        case 'delete':
          deletes.push({ ...op, kind: 'delete', row: null });
          break;
      }
    }

    // Key changes whose new row still misses unchanged columns: move the old row to the new key.
    // With no old row, no new row and no newer delete of the old key, the old row has not arrived
    // (its changes are in another partition): wait for it rather than lose those columns.
    if (wait) {
      const pending: string[] = [];
      let first: bigint | null = null;
      for (const u of upserts) {
        const from = u.op.copyFrom;
        if (!from || local.rowVersion.has(from.keyText) || local.rowVersion.has(u.op.keyText)) continue;
        const tomb = local.tombstone.get(from.keyText);
        if (tomb !== undefined && compareVersions(tomb, u.op.version) >= 0) continue;
        pending.push(`${plan.name} ${from.keyText}`);
        if (first === null || BigInt(from.offset) < first) first = BigInt(from.offset);
      }
      if (first !== null) throw new OldRowPendingError(pending, first.toString());
    }
    const moved = new Set<string>();
    for (const u of upserts) {
      const from = u.op.copyFrom;
      if (!from || !local.rowVersion.has(from.keyText) || local.rowVersion.has(u.op.keyText)) continue;
      const kb = keyBindings(st, u.op.change.event.schema);
      const cols = u.op.change.event.schema.columns.filter((c) => !isUnchanged(u.row[c.name]) && u.row[c.name] !== undefined).map((c) => binding(st, c));
      try {
        const vb = versionBindings(st);
        const cells = rowCells(cols, u.row, u.op.version, vb);
        const r = await q(s, d.updateByKey(st.name, kb, keyCells(kb, from.key), [...cols, ...vb], cells));
        if (r.affected > 0) {
          moved.add(u.op.keyText);
          local.rowVersion.delete(from.keyText);
          out.written++;
          out.upserts++;
        }
      } catch (err) {
        if (!(err instanceof PoisonRecordError)) throw err;
        out.dead.push(deadLetterFor(u.op.change, err));
        moved.add(u.op.keyText);
      }
    }

    if (deletes.length > 0) {
      const kb = keyBindings(st, plan.schema);
      const cells: (string | number | null)[][] = [];
      const live: KeyOp[] = [];
      for (const op of deletes) {
        try {
          cells.push(keyCells(kb, op.key));
          live.push(op);
        } catch (err) {
          if (!(err instanceof PoisonRecordError)) throw err;
          out.dead.push(deadLetterFor(op.change, err));
        }
      }
      for (const part of chunks(cells, rowsPerStatement)) {
        const r = await q(s, d.deleteKeys(st.name, kb, part));
        out.written += r.affected;
      }
      out.deletes += live.length;
      if (versioned && live.length > 0) {
        for (const part of chunks(live, rowsPerStatement)) {
          await q(s, d.writeTombstones(meta, st.tbl, part.map((op) => ({ hash: tombstoneHash(op.keyText), keyText: op.keyText, version: op.version }))));
        }
      }
    }

    // Upserts, grouped by schema version and by the set of unchanged columns (which the update must not touch).
    const groups = new Map<string, { schema: TableSchema; unchanged: string[]; rows: { op: KeyOp; row: Row }[] }>();
    for (const u of upserts) {
      if (moved.has(u.op.keyText)) continue;
      const schema = u.op.change.event.schema;
      let unchanged: string[] = NONE;
      for (const c of schema.columns) if (isUnchanged(u.row[c.name])) (unchanged === NONE ? (unchanged = [c.name]) : unchanged.push(c.name));
      const gk = unchanged.length === 0 ? schemaFingerprint(schema) : `${schemaFingerprint(schema)}\u0000${unchanged.join('\u0000')}`;
      let g = groups.get(gk);
      if (!g) groups.set(gk, (g = { schema, unchanged, rows: [] }));
      g.rows.push(u);
    }
    for (const g of groups.values()) {
      const cols = g.schema.columns.map((c) => binding(st, c));
      const vb = versionBindings(st);
      const all = [...cols, ...vb];
      const pk = g.schema.primaryKey;
      const update = all.map((b) => b.target.name).filter((c) => !pk.includes(c) && !g.unchanged.includes(c));
      const cells: (string | number | null)[][] = [];
      for (const u of g.rows) {
        try {
          cells.push(rowCells(cols, u.row, u.op.version, vb));
        } catch (err) {
          if (!(err instanceof PoisonRecordError)) throw err;
          out.dead.push(deadLetterFor(u.op.change, err));
        }
      }
      for (const part of chunks(cells, rowsPerStatement)) {
        await q(s, d.upsert(st.name, all, part, pk, update));
        out.written += part.length;
        out.upserts += part.length;
      }
    }
    if (clearTombstones.length > 0) {
      for (const part of chunks(clearTombstones, rowsPerStatement)) await q(s, d.deleteTombstones(meta, st.tbl, part.map(tombstoneHash)));
    }
  }

  async function applyKeyless(s: SqlSession, st: TableState, plan: TablePlan, out: PlanOutcome): Promise<void> {
    let pending: { schema: TableSchema; cells: (string | number | null)[][] } | null = null;
    const flush = async () => {
      if (!pending) return;
      const cols = [...pending.schema.columns.map((c) => binding(st, c)), ...versionBindings(st)];
      for (const part of chunks(pending.cells, rowsPerStatement)) await q(s, d.insert(st.name, cols, part));
      out.written += pending.cells.length;
      out.upserts += pending.cells.length;
      pending = null;
    };
    const deleteOne = async (op: KeylessOp & { kind: 'delete' | 'update' }, row: Row) => {
      const cols = op.change.event.schema.columns.filter((c) => row[c.name] !== undefined && !isUnchanged(row[c.name])).map((c) => binding(st, c));
      const cells = cols.map((b) => d.toCell(row[b.source.name] ?? null, b.source.type, b.target));
      const r = await q(s, d.deleteOneRow(st.name, cols, cells));
      out.written += r.affected;
      out.deletes++;
    };
    for (const op of plan.keyless) {
      try {
        const schema = op.change.event.schema;
        switch (op.kind) {
          case 'insert': {
            const cells = rowCells(schema.columns.map((c) => binding(st, c)), op.row, op.version, versionBindings(st));
            if (pending && pending.schema !== schema) await flush();
            pending ??= { schema, cells: [] };
            pending.cells.push(cells);
            break;
          }
          case 'delete':
            await flush();
            await deleteOne(op, op.row);
            break;
          case 'update': {
            await flush();
            await deleteOne(op, op.before);
            const merged: Row = {};
            for (const [k, v] of Object.entries(op.row)) merged[k] = isUnchanged(v) ? (op.before[k] ?? null) : v;
            pending = { schema, cells: [rowCells(schema.columns.map((c) => binding(st, c)), merged, op.version, versionBindings(st))] };
            break;
          }
          case 'truncate': {
            await flush();
            const r = await q(s, d.deleteOlderThan(st.name, op.version));
            out.written += r.affected;
            break;
          }
        }
      } catch (err) {
        if (!(err instanceof PoisonRecordError)) throw err;
        out.dead.push(deadLetterFor(op.change, err));
      }
    }
    await flush();
  }

  function conflictRow(st: TableState, op: KeyOp, kind: ConflictKind, outcome: string, local: LocalState): ConflictRow {
    return {
      sink: o.name,
      tbl: st.tbl,
      keyText: op.keyText,
      kind,
      resolution: outcome === 'local' ? 'kept-local' : outcome === 'remote' ? 'applied-remote' : outcome,
      local: local.version,
      localRow: null,
      remote: op.version,
      remoteRow: op.row === null ? null : JSON.stringify(op.row, (_k, v: unknown) => (v === UNCHANGED ? undefined : v)),
    };
  }

  /** The replica's rows of the given keys, by key text (as the replica returns them in JSON). */
  async function readLocalRows(s: SqlSession, st: TableState, schema: TableSchema, keys: { key: Row; keyText: string }[]): Promise<Map<string, Row>> {
    const out = new Map<string, Row>();
    const kb = keyBindings(st, schema);
    const cols = [...st.replica.columns.keys()];
    for (const part of chunks(keys, rowsPerStatement)) {
      const { cells, texts } = convertibleKeys(kb, part);
      if (cells.length === 0) continue;
      const res = await q(s, d.readRowsJson(st.name, kb, cells, cols));
      for (const row of res.rows) out.set(texts[Number(row.i)]!, (typeof row.row_json === 'string' ? JSON.parse(row.row_json) : row.row_json) as Row);
    }
    return out;
  }

  /** Fills the local rows of conflicts (for the log) with one read per table. */
  async function fillLocalRows(s: SqlSession, st: TableState, schema: TableSchema, rows: ConflictRow[], keysByText: Map<string, Row>): Promise<void> {
    const wanted = rows.filter((r) => r.local !== null);
    if (wanted.length === 0) return;
    const kb = keyBindings(st, schema);
    const texts: string[] = [];
    const cells: (string | number | null)[][] = [];
    for (const r of wanted) {
      const key = keysByText.get(r.keyText);
      if (!key) continue;
      try {
        cells.push(keyCells(kb, key));
        texts.push(r.keyText);
      } catch {
        // the row could not be written either
      }
    }
    if (cells.length === 0) return;
    const cols = [...st.replica.columns.keys()];
    const res = await q(s, d.readRowsJson(st.name, kb, cells, cols));
    const byText = new Map<string, string>();
    for (const row of res.rows) byText.set(texts[Number(row.i)]!, typeof row.row_json === 'string' ? row.row_json : JSON.stringify(row.row_json));
    for (const r of wanted) r.localRow = byText.get(r.keyText) ?? null;
  }

  let warnedKeyChange = false;

  async function applyPlan(s: SqlSession, st: TableState, plan: TablePlan, wait = false): Promise<PlanOutcome> {
    const out = emptyOutcome();
    if (!o.resolver.versioned && !warnedKeyChange && [...plan.ops.values()].some((op) => op.crossKey)) {
      warnedKeyChange = true;
      log.warn(
        { table: d.qualified(st.name) },
        'key change with conflict strategy none: in key mode its delete of the old key can race earlier changes of that key in another partition; use lww (default) or transaction mode',
      );
    }
    out.skipped += plan.superseded;
    for (const c of plan.conflicts) {
      conflictsTotal.inc({ sink: o.name, kind: 'older' });
      out.conflicts.push({
        sink: o.name,
        tbl: st.tbl,
        keyText: c.kept.keyText,
        kind: 'older',
        resolution: 'kept-newer-in-batch',
        local: c.kept.version,
        localRow: c.kept.row === null ? null : JSON.stringify(c.kept.row),
        remote: c.dropped.version,
        remoteRow: c.dropped.row === null ? null : JSON.stringify(c.dropped.row),
      });
    }
    await q(s, d.lockTable(meta, st.tbl, plan.crossPartition));
    if (plan.keyed) await applyKeyed(s, st, plan, out, wait);
    else await applyKeyless(s, st, plan, out);
    if (o.logConflicts && out.conflicts.length > 0) {
      const keysByText = new Map<string, Row>([...plan.ops.values()].map((op) => [op.keyText, op.key]));
      if (plan.keyed) await fillLocalRows(s, st, plan.schema, out.conflicts.filter((c) => c.resolution === 'kept-local'), keysByText);
      for (const part of chunks(out.conflicts, rowsPerStatement)) await q(s, d.insertConflicts(meta, part));
    }
    return out;
  }

  /**
   * The fast path: every plan's statements in the open transaction, no savepoints. A data error
   * (poison change) propagates; the caller then redoes the work with {@link applyPlansCareful}.
   */
  async function applyPlansFast(s: SqlSession, plans: TablePlan[], states: Map<TablePlan, TableState>, wait = false): Promise<PlanOutcome> {
    const out = emptyOutcome();
    for (const plan of plans) {
      const st = states.get(plan);
      if (st) mergeOutcome(out, await applyPlan(s, st, plan, wait));
    }
    return out;
  }

  /**
   * The careful path, after the replica refused a statement: each plan under a savepoint; a plan
   * refused again is re-applied change by change, each under its own savepoint, so only the
   * poison changes are dead-lettered.
   */
  async function applyPlansCareful(s: SqlSession, plans: TablePlan[], states: Map<TablePlan, TableState>, total: PlanOutcome, wait = false): Promise<void> {
    for (const plan of plans) {
      const st = states.get(plan);
      if (!st) continue;
      await q(s, d.savepoint('cdc_plan'));
      try {
        const out = await applyPlan(s, st, plan, wait);
        await q(s, d.release('cdc_plan'));
        mergeOutcome(total, out);
        continue;
      } catch (err) {
        if (!isPoison(err)) throw err;
        await q(s, d.rollbackTo('cdc_plan'));
        log.warn({ table: d.qualified(st.name), err: (err as Error).message, changes: plan.changes.length }, 'replica refused a batch; applying its changes one by one');
      }
      for (const change of plan.changes) {
        const [single] = planBatch([change], { versioned: o.resolver.versioned });
        if (!single) continue;
        await q(s, d.savepoint('cdc_one'));
        try {
          const out = await applyPlan(s, st, single, wait);
          await q(s, d.release('cdc_one'));
          mergeOutcome(total, out);
        } catch (err) {
          if (!isPoison(err)) throw err;
          await q(s, d.rollbackTo('cdc_one'));
          total.dead.push(deadLetterFor(change, err));
        }
      }
    }
  }

  /** DDL for the plans; a table the replica cannot hold dead-letters its changes. */
  async function prepare(s: SqlSession, plans: TablePlan[], inTx: boolean, total: PlanOutcome): Promise<Map<TablePlan, TableState>> {
    const states = new Map<TablePlan, TableState>();
    for (const plan of plans) {
      try {
        states.set(plan, await ensureTable(s, plan, inTx));
      } catch (err) {
        if (!isPoison(err)) throw err;
        log.warn({ table: plan.name, err: (err as Error).message }, 'cannot create or alter the replica table; its changes go to the dead-letter topic');
        for (const change of plan.changes) total.dead.push(deadLetterFor(change, err));
      }
    }
    return states;
  }

  async function writeOffsets(s: SqlSession, offsets: OffsetAdvance[]): Promise<void> {
    for (const off of offsets) {
      if (off.expected === off.next) continue;
      const r = await q(
        s,
        off.expected === null ? d.insertOffset(meta, o.name, off.topic, off.partition, off.next) : d.advanceOffset(meta, o.name, off.topic, off.partition, off.expected, off.next),
      );
      if (r.affected !== 1) throw new OffsetFenceError(off.topic, off.partition, off.expected);
    }
  }

  function onError(err: unknown): void {
    if (err instanceof StaleSchemaError) tables.clear();
  }

  function report(total: PlanOutcome): ApplyResult {
    if (total.upserts) rowsWritten.inc({ sink: o.name, op: 'upsert' }, total.upserts);
    if (total.deletes) rowsWritten.inc({ sink: o.name, op: 'delete' }, total.deletes);
    if (total.skipped) skippedTotal.inc({ sink: o.name }, total.skipped);
    for (const dl of total.dead) deadTotal.inc({ sink: o.name, code: dl.code });
    return { written: total.written, skipped: total.skipped, conflicts: total.conflicts.length, deadLettered: total.dead.length };
  }

  async function beginTx(s: SqlSession): Promise<void> {
    if (d.kind === 'postgres') {
      // One round trip (simple protocol: several statements, no parameters).
      await q(s, ['BEGIN', ...(o.beginSql ?? [])].join('; '));
      return;
    }
    // MySQL sessions run one statement per call.
    await q(s, 'BEGIN');
    for (const sql of o.beginSql ?? []) await q(s, sql);
  }

  async function rollbackQuietly(s: SqlSession): Promise<void> {
    await s.query('ROLLBACK').catch(() => undefined);
  }

  async function applyBatch(batch: SinkBatch, hooks: ApplyHooks): Promise<ApplyResult> {
    const t0 = process.hrtime.bigint();
    const plans = planBatch(batch.changes, { versioned: o.resolver.versioned });
    const total = emptyOutcome();
    const s = await o.pool.session();
    let broken = false;
    try {
      const states = await prepare(s, plans, false, total);
      await beginTx(s);
      try {
        mergeOutcome(total, await applyPlansFast(s, plans, states, batch.waitForOldRows === true));
      } catch (err) {
        if (!isPoison(err)) throw err;
        // Start over, carefully: only the poison changes stay out.
        await q(s, 'ROLLBACK');
        log.warn({ err: (err as Error).message, changes: batch.changes.length }, 'replica refused a batch; applying it change by change under savepoints');
        total.written = total.skipped = total.upserts = total.deletes = 0;
        total.conflicts = [];
        await beginTx(s);
        await applyPlansCareful(s, plans, states, total, batch.waitForOldRows === true);
      }
      await writeOffsets(s, batch.offsets);
      if (total.dead.length > 0) await hooks.deadLetter(total.dead);
      await q(s, 'COMMIT');
      await finishTables(s, plans);
    } catch (err) {
      broken = !(err instanceof OffsetFenceError || err instanceof OldRowPendingError);
      await rollbackQuietly(s);
      onError(err);
      throw err;
    } finally {
      s.release(broken);
    }
    applySeconds.observe({ sink: o.name }, Number(process.hrtime.bigint() - t0) / 1e9);
    return report(total);
  }

  return {
    name: o.name,
    kind: o.kind,

    async start() {
      if (started) return;
      const s = await o.pool.session();
      try {
        for (const stmt of d.metaDdl(meta)) await ddl(s, stmt, false);
      } finally {
        s.release();
      }
      started = true;
      log.info({ sink: o.name, replica: await o.pool.serverVersion() }, 'sink ready');
    },

    async storedOffsets(parts) {
      const topics = [...new Set(parts.map((p) => p.topic))];
      const out = new Map<string, string>();
      if (topics.length === 0) return out;
      const s = await o.pool.session();
      try {
        const r = await q(s, d.loadOffsets(meta, o.name, topics));
        for (const row of r.rows) out.set(partitionKey(String(row.topic), Number(row.partition)), String(row.next_offset));
      } finally {
        s.release();
      }
      return out;
    },

    apply: applyBatch,

    async begin(hooks: ApplyHooks): Promise<SinkTransaction> {
      const s = await o.pool.session();
      const total = emptyOutcome();
      const allPlans: TablePlan[] = [];
      let open = true;
      /** Replica tables this transaction wrote. */
      const written = new Set<string>();
      try {
        await beginTx(s);
      } catch (err) {
        s.release(true);
        throw err;
      }
      const fail = async (err: unknown) => {
        if (open) {
          open = false;
          await rollbackQuietly(s);
          s.release(!(err instanceof OffsetFenceError));
        }
        onError(err);
        return err;
      };
      return {
        async apply(changes) {
          if (!open) throw new Error('sink transaction is closed');
          try {
            const plans = planBatch(changes, { versioned: o.resolver.versioned });
            let states: Map<TablePlan, TableState>;
            if (d.kind === 'postgres') {
              // Transactional DDL, under a savepoint, inside the open transaction.
              states = await prepare(s, plans, true, total);
            } else if (!plans.some((p) => written.has(tblKey(o.mapName(p.id))) && mayNeedDdl(p))) {
              // MySQL commits the open transaction at any DDL: run it on another connection. A
              // table this transaction has not written holds no metadata lock of ours.
              const ds = await o.pool.session();
              try {
                states = await prepare(ds, plans, false, total);
              } finally {
                ds.release();
              }
            } else {
              // Altering a table this transaction already wrote would wait for our own metadata
              // lock: commit what we have, alter, go on (only a schema change inside one source
              // transaction, which a MySQL source never produces, gets here).
              log.warn('schema change inside a source transaction on a table it already wrote: MySQL commits DDL implicitly, so this transaction is applied in two parts');
              states = await prepare(s, plans, false, total);
              await beginTx(s);
            }
            // A savepoint per chunk: a refused statement undoes only this chunk, which is redone carefully.
            await q(s, d.savepoint('cdc_chunk'));
            try {
              mergeOutcome(total, await applyPlansFast(s, plans, states));
              await q(s, d.release('cdc_chunk'));
            } catch (err) {
              if (!isPoison(err)) throw err;
              await q(s, d.rollbackTo('cdc_chunk'));
              await applyPlansCareful(s, plans, states, total);
            }
            for (const p of plans) written.add(tblKey(o.mapName(p.id)));
            allPlans.push(...plans);
          } catch (err) {
            throw await fail(err);
          }
        },
        async commit(offsets) {
          if (!open) throw new Error('sink transaction is closed');
          try {
            await writeOffsets(s, offsets);
            if (total.dead.length > 0) await hooks.deadLetter(total.dead);
            await q(s, 'COMMIT');
            open = false;
            await finishTables(s, allPlans);
            s.release();
          } catch (err) {
            throw await fail(err);
          }
          return report(total);
        },
        async rollback() {
          if (!open) return;
          open = false;
          await rollbackQuietly(s);
          s.release();
        },
      };
    },

    async purgeTombstones() {
      const horizonUs = BigInt(Date.now() - o.tombstoneHorizonDays * 86_400_000) * 1000n;
      const s = await o.pool.session();
      try {
        const r = await q(s, d.purgeTombstones(meta, horizonUs));
        if (r.affected > 0) log.info({ purged: r.affected }, 'purged delete tombstones past the horizon');
        return r.affected;
      } finally {
        s.release();
      }
    },

    async tryLease(name: string): Promise<Lease | null> {
      const s = await o.pool.session();
      let ok = false;
      try {
        const r = await q(s, d.tryLock(name));
        const v = r.rows[0]?.ok;
        ok = v === true || v === 1 || v === '1' || v === 't';
      } catch (err) {
        s.release(true);
        throw err;
      }
      if (!ok) {
        s.release();
        return null;
      }
      let released = false;
      return {
        lost: s.closed,
        async release() {
          if (released) return;
          released = true;
          await s.query(d.unlock(name)).catch(() => undefined);
          s.release(true);
        },
      };
    },

    async close() {
      await o.pool.end();
    },
  };
}
