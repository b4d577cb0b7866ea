import type { Row } from '../../schemas/column-types.js';
import type { TableId } from '../../schemas/table-schema.js';
import type { RowVersion } from './version.js';

/**
 * older: the incoming change is older than what the replica holds (row or delete tombstone) and
 * was not applied. origin-differs: the incoming change is newer and replaced a row another origin
 * wrote (the multi-master case). concurrent: version vectors show that neither side saw the other
 * (merged). delete-update: a delete and an update neither of which saw the other.
 */
export type ConflictKind = 'older' | 'origin-differs' | 'concurrent' | 'delete-update';

/** What the replica holds for one key. */
export interface LocalState {
  /** Version of the replica's row, or of its delete tombstone / truncate; null when unknown. */
  version: RowVersion | null;
  /** True when the replica holds the row. */
  exists: boolean;
  /** The row's columns as the replica returns them, only when the resolver asks (`needsLocalRow`). */
  row?: Row;
}

/** An incoming change to one key, after per-batch dedup. */
export interface RemoteChange {
  kind: 'upsert' | 'delete';
  /** Full row image for upserts (may hold UNCHANGED placeholders); null for deletes. */
  row: Row | null;
  version: RowVersion;
  /** The change's before image when the source sent one (deletes: at least the key). */
  before?: Row | null;
}

export interface ResolveMeta {
  sink: string;
  table: TableId;
  key: Row;
}

/**
 * remote: apply the incoming change. local: keep the replica as it is. row / delete: write this
 * row instead, or delete (custom resolvers merging both sides).
 */
export type Resolution =
  | { outcome: 'remote'; conflict?: ConflictKind }
  | { outcome: 'local'; conflict?: ConflictKind }
  /** `version`: what the written row is stamped with (a merge keeps the newer side's); default the remote's. */
  | { outcome: 'row'; row: Row; conflict: ConflictKind; version?: RowVersion }
  | { outcome: 'delete'; conflict: ConflictKind };

/**
 * Decides, per key, between the replica's state and an incoming change. LWW and `none` are built
 * in; version vectors and user resolvers (`(local, remote, meta) => row | 'delete'`) implement the
 * same interface.
 *
 * Contract: `resolve` is pure and deterministic (every replica must reach the same decision from
 * the same inputs, whatever the delivery order) and must treat an incoming change equal to the
 * local version as a duplicate (`local`, no conflict).
 */
export interface ConflictResolver {
  readonly name: string;
  /**
   * Compare versions: dedup keeps the newest version per key, deletes leave tombstones, and the
   * replica's versions are read before each batch. When false, changes apply in delivery order.
   */
  readonly versioned: boolean;
  /** Whether `resolve` needs the local row's columns (costs reading whole rows). */
  readonly needsLocalRow: boolean;
  resolve(local: LocalState, remote: RemoteChange, meta: ResolveMeta): Resolution;
}
