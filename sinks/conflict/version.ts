import type { ChangeEvent } from '../../schemas/change-event.js';
import type { SourcePosition } from '../../schemas/position.js';

/**
 * The version a replicated row carries: source commit time, origin node, and the change's place
 * in its origin's log. Versions are totally ordered by (tsUs, origin, order), so every replica
 * converges to the same state whatever order changes arrive in.
 *
 * `order` breaks the tie between changes of one origin that share a commit timestamp (every
 * change of one transaction; MySQL/MariaDB binlog timestamps have one-second resolution): it is
 * a fixed-width string whose lexicographic order is the origin's log order.
 */
export interface RowVersion {
  /** Source commit time in microseconds since epoch; 0 for snapshot reads. */
  tsUs: bigint;
  origin: string;
  order: string;
}

export function compareVersions(a: RowVersion, b: RowVersion): number {
  if (a.tsUs !== b.tsUs) return a.tsUs < b.tsUs ? -1 : 1;
  if (a.origin !== b.origin) return a.origin < b.origin ? -1 : 1;
  if (a.order !== b.order) return a.order < b.order ? -1 : 1;
  return 0;
}

const hex = (n: bigint, width: number): string => {
  const s = n.toString(16);
  return s.length >= width ? s : '0'.repeat(width - s.length) + s;
};

/** 'X/Y' LSN text to a number; 0 for anything unparsable. */
function lsnValue(lsn: string | undefined): bigint {
  if (!lsn) return 0n;
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn);
  if (!m) return 0n;
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** `mysql-bin.000042` → 42. */
function binlogIndex(file: string): bigint {
  const m = /(\d+)$/.exec(file);
  return m ? BigInt(m[1]!) : 0n;
}

/**
 * Log-order key of a position, comparable between positions of one source server:
 * PostgreSQL (commit LSN, index in the transaction, change LSN); MySQL/MariaDB (binlog file
 * number, offset, index in the transaction). Relies only on the documented fields of
 * `SourcePosition`; it lives here because only LWW needs an order across partitions.
 */
export function logOrderKey(p: SourcePosition): string {
  if (p.kind === 'pg') {
    return `p${hex(lsnValue(p.commitLsn ?? p.lsn), 16)}${hex(BigInt(p.seq ?? 0), 8)}${hex(lsnValue(p.lsn), 16)}`;
  }
  return `m${hex(binlogIndex(p.file), 8)}${hex(BigInt(Math.max(0, p.pos)), 12)}${hex(BigInt(p.seq ?? 0), 8)}`;
}

/** The origin a change is attributed to: `source.origin`, else the source's name. */
export function originOf(e: ChangeEvent): string {
  return e.source.origin ?? e.source.name;
}

/**
 * The version of a change. Snapshot reads get time 0: a snapshot row is the state at the
 * snapshot's start and is older than any change streamed after it, although it was *read* later
 * (its ts_ms is the read time, which can be after the commit of a streamed change to that row).
 */
export function versionOf(e: ChangeEvent): RowVersion {
  // Incremental-snapshot rows are the state at their HIGH watermark and carry its commit time.
  const snapshot = e.op === 'r' && e.source.snapshot !== 'incremental';
  let tsUs = 0n;
  if (!snapshot) tsUs = e.source.ts_us !== undefined ? BigInt(e.source.ts_us) : BigInt(e.source.ts_ms) * 1000n;
  return { tsUs, origin: originOf(e), order: logOrderKey(e.position) };
}

export function formatVersion(v: RowVersion): string {
  return `${v.tsUs}/${v.origin}/${v.order}`;
}
