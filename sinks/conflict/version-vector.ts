import { type ColumnValue, type Row, UNCHANGED } from '../../schemas/column-types.js';
import { HIDDEN_COLUMNS } from '../dialect.js';
import type { ConflictKind, ConflictResolver, LocalState, RemoteChange, Resolution, ResolveMeta } from './types.js';
import { compareVersions, type RowVersion } from './version.js';

/**
 * Version-vector conflict resolution (mesh tables with `_cdc_vv` and `_cdc_cts`, kept by the
 * mesh triggers on every local write; pipeline/mesh/setup.ts):
 *
 * - `_cdc_vv`: the row's version vector, `{"<node>": <writes of that node>}`. Comparing vectors
 *   tells a causally newer change from a *concurrent* one (neither side saw the other), which a
 *   timestamp cannot: concurrent changes are detected, merged and recorded as conflicts.
 * - `_cdc_cts`: per column, the version `[ts, node]` of the write that set its value.
 *
 * The merge is per-column last-writer-wins on those versions (or a custom resolver's merge for
 * concurrent updates). A delete at version T removes every column written at or before T: a
 * concurrent update that wrote some columns after T keeps the row, with the other columns NULL
 * (a row tombstone, as Cassandra does). Per column this is a max over a total order, so every
 * node reaches the same state in any delivery order (docs/multi-master.md has the argument).
 * Resolution never depends on the vectors, only classification does: a wrong or reset vector
 * can mislabel a conflict but cannot make nodes diverge.
 */

export const VV_COLUMN = '_cdc_vv';
export const CTS_COLUMN = '_cdc_cts';
const META_COLUMNS = new Set<string>([...HIDDEN_COLUMNS, VV_COLUMN, CTS_COLUMN]);

export type VersionVector = Record<string, number>;
/** Per column: [ts in microseconds, origin]. */
export type ColumnVersions = Record<string, [number, string]>;

export function parseVector(v: ColumnValue | undefined): VersionVector {
  const o = parseJson(v);
  const out: VersionVector = {};
  if (o && typeof o === 'object' && !Array.isArray(o)) for (const [k, n] of Object.entries(o)) if (typeof n === 'number' || typeof n === 'string') out[k] = Number(n);
  return out;
}

export function parseColumnVersions(v: ColumnValue | undefined): ColumnVersions {
  const o = parseJson(v);
  const out: ColumnVersions = {};
  if (o && typeof o === 'object' && !Array.isArray(o)) {
    for (const [k, x] of Object.entries(o)) if (Array.isArray(x) && x.length === 2) out[k] = [Number(x[0]), String(x[1])];
  }
  return out;
}

function parseJson(v: ColumnValue | undefined): unknown {
  if (v === null || v === undefined || v === UNCHANGED) return null;
  if (typeof v === 'object') return v;
  try {
    return JSON.parse(String(v));
  } catch {
    return null;
  }
}

export type Causality = 'equal' | 'before' | 'after' | 'concurrent';

/** How vector `a` relates to `b`: before (b saw a), after (a saw b), equal, or concurrent. */
export function compareVectors(a: VersionVector, b: VersionVector): Causality {
  let less = false;
  let more = false;
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = a[k] ?? 0;
    const y = b[k] ?? 0;
    if (x < y) less = true;
    if (x > y) more = true;
  }
  return less && more ? 'concurrent' : less ? 'before' : more ? 'after' : 'equal';
}

export function mergeVectors(a: VersionVector, b: VersionVector): VersionVector {
  const out: VersionVector = { ...a };
  for (const [k, n] of Object.entries(b)) out[k] = Math.max(out[k] ?? 0, n);
  return out;
}

/** Deterministic JSON (sorted keys) so every node writes the same text for the same value. */
export function canonicalJson(o: Record<string, unknown>): string {
  return JSON.stringify(Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
}

const cmpCell = (a: [number, string], b: [number, string]): number => (a[0] !== b[0] ? (a[0] < b[0] ? -1 : 1) : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0);
const asCell = (v: RowVersion): [number, string] => [Number(v.tsUs), v.origin];
const maxVersion = (a: RowVersion, b: RowVersion) => (compareVersions(a, b) >= 0 ? a : b);

/** What a custom merge gets besides the two rows. */
export interface MergeMeta extends ResolveMeta {
  localVersion: RowVersion;
  remoteVersion: RowVersion;
  localVector: VersionVector;
  remoteVector: VersionVector;
  /** The built-in result, per-column last writer wins: start from it and change what you merge. */
  lww: Row;
}

/**
 * A user merge for concurrent updates (`conflict.strategy: custom`): both rows (local as the
 * replica returns it, remote as the event carries it, without the mesh columns), returns the row
 * to keep or 'delete'. To converge it must be a join of the values local writes produce
 * (commutative, associative, idempotent, and not undoing causally later writes: e.g. a union of
 * grow-only tag sets, the max of a monotonic counter); columns it does not merge should come from
 * `meta.lww`. New values made by a merge are not ordered against a concurrent delete (see
 * docs/multi-master.md).
 */
export type MergeFunction = (local: Row, remote: Row, meta: MergeMeta) => Row | 'delete';

export interface VersionVectorOptions {
  name?: string;
  /** Replaces the per-column LWW merge for concurrent updates. */
  merge?: MergeFunction;
}

/** Columns of a row that are data (not key, not mesh bookkeeping). */
function dataColumns(row: Row, key: Row): string[] {
  return Object.keys(row).filter((c) => !META_COLUMNS.has(c) && !(c in key));
}

function userRow(row: Row): Row {
  return Object.fromEntries(Object.entries(row).filter(([c]) => !META_COLUMNS.has(c)));
}

export function versionVectorResolver(o: VersionVectorOptions = {}): ConflictResolver {
  const name = o.name ?? 'version-vector';

  function resolveUpsert(local: LocalState, remote: RemoteChange, meta: ResolveMeta): Resolution {
    const R = remote.row!;
    const rv = remote.version;
    const rcts = parseColumnVersions(R[CTS_COLUMN]);
    const rvv = parseVector(R[VV_COLUMN]);
    const cols = dataColumns(R, meta.key);
    const rCell = (c: string) => rcts[c] ?? asCell(rv);
    if (!local.exists) {
      const T = local.version;
      if (T === null) return { outcome: 'remote' };
      if (compareVersions(rv, T) <= 0) return { outcome: 'local', conflict: 'older' };
      // Newer than the delete tombstone: what the update did not write after the delete is gone.
      const gone = cols.filter((c) => cmpCell(rCell(c), asCell(T)) <= 0);
      if (gone.length === 0) return { outcome: 'remote' };
      const row: Row = { ...R };
      const cts: ColumnVersions = { ...rcts };
      for (const c of gone) {
        row[c] = null;
        cts[c] = asCell(T);
      }
      row[CTS_COLUMN] = canonicalJson(cts);
      return { outcome: 'row', row, conflict: 'delete-update' };
    }
    const L = local.row ?? {};
    const lv = local.version ?? rv;
    const lcts = parseColumnVersions(L[CTS_COLUMN]);
    const lvv = parseVector(L[VV_COLUMN]);
    const lCell = (c: string) => lcts[c] ?? asCell(lv);
    const causality = compareVectors(rvv, lvv);
    const version = maxVersion(lv, rv);
    const vv = canonicalJson(mergeVectors(lvv, rvv));

    if (causality === 'concurrent' && o.merge) {
      const lww: Row = { ...meta.key };
      for (const c of cols) lww[c] = cmpCell(rCell(c), lCell(c)) >= 0 ? (R[c] ?? null) : (L[c] ?? null);
      const merged = o.merge(userRow(L), userRow(R), { ...meta, localVersion: lv, remoteVersion: rv, localVector: lvv, remoteVector: rvv, lww });
      if (merged === 'delete') return { outcome: 'delete', conflict: 'concurrent' };
      const cts: ColumnVersions = {};
      const row: Row = { ...meta.key };
      for (const c of cols) {
        const v = merged[c] ?? null;
        const lc = lCell(c);
        const rc = rCell(c);
        // A value taken from one side keeps that side's column version; a new value the newer one.
        const fromRemote = JSON.stringify(v) === JSON.stringify(R[c] ?? null);
        const fromLocal = JSON.stringify(v) === JSON.stringify(L[c] ?? null);
        cts[c] = fromRemote && !fromLocal ? rc : fromLocal && !fromRemote ? lc : cmpCell(rc, lc) >= 0 ? rc : lc;
        row[c] = fromLocal && !fromRemote ? UNCHANGED : v;
      }
      row[CTS_COLUMN] = canonicalJson(cts);
      row[VV_COLUMN] = vv;
      return { outcome: 'row', row, conflict: 'concurrent', version };
    }

    // Per-column last writer wins on the column versions.
    let remoteWins = 0;
    let localWins = 0;
    const row: Row = { ...meta.key };
    const cts: ColumnVersions = {};
    for (const c of cols) {
      const rc = rCell(c);
      const lc = lCell(c);
      if (cmpCell(rc, lc) >= 0) {
        remoteWins++;
        row[c] = R[c] ?? null;
        cts[c] = rc;
      } else {
        localWins++;
        // Keep the replica's value: the placeholder leaves the column out of the update.
        row[c] = UNCHANGED;
        cts[c] = lc;
      }
    }
    const conflict: ConflictKind | undefined = causality === 'concurrent' ? 'concurrent' : undefined;
    if (localWins === 0 && vv === canonicalJson(rvv) && compareVersions(rv, lv) >= 0) return conflict ? { outcome: 'remote', conflict } : { outcome: 'remote' };
    if (remoteWins === 0 && vv === canonicalJson(lvv) && compareVersions(lv, rv) >= 0) return conflict ? { outcome: 'local', conflict } : { outcome: 'local' };
    row[CTS_COLUMN] = canonicalJson(cts);
    row[VV_COLUMN] = vv;
    return { outcome: 'row', row, conflict: conflict ?? 'concurrent', version };
  }

  function resolveDelete(local: LocalState, remote: RemoteChange, meta: ResolveMeta): Resolution {
    const T = remote.version;
    if (!local.exists) {
      if (local.version !== null && compareVersions(T, local.version) <= 0) return { outcome: 'local' };
      return { outcome: 'remote' };
    }
    const L = local.row ?? {};
    const lv = local.version ?? T;
    const lvv = parseVector(L[VV_COLUMN]);
    const dvv = parseVector(remote.before?.[VV_COLUMN]);
    const concurrent = compareVectors(dvv, lvv) === 'concurrent' || compareVectors(dvv, lvv) === 'before';
    if (compareVersions(lv, T) < 0) {
      // Every column is older than the delete.
      return concurrent && Object.keys(lvv).length > 0 ? { outcome: 'remote', conflict: 'delete-update' } : { outcome: 'remote' };
    }
    // A write newer than the delete that did not see it: its columns stay, the older ones go.
    const lcts = parseColumnVersions(L[CTS_COLUMN]);
    const row: Row = { ...meta.key };
    const cts: ColumnVersions = { ...lcts };
    let gone = 0;
    for (const c of dataColumns(L, meta.key)) {
      const lc = lcts[c] ?? asCell(lv);
      if (cmpCell(lc, asCell(T)) <= 0) {
        row[c] = null;
        cts[c] = asCell(T);
        gone++;
      } else row[c] = UNCHANGED;
    }
    if (gone === 0) return { outcome: 'local', conflict: 'older' };
    row[CTS_COLUMN] = canonicalJson(cts);
    row[VV_COLUMN] = UNCHANGED;
    return { outcome: 'row', row, conflict: 'delete-update', version: lv };
  }

  return {
    name,
    versioned: true,
    needsLocalRow: true,
    resolve(local, remote, meta) {
      if (local.version !== null && compareVersions(remote.version, local.version) === 0) return { outcome: 'local' };
      return remote.kind === 'upsert' ? resolveUpsert(local, remote, meta) : resolveDelete(local, remote, meta);
    },
  };
}
