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

/** Lower-case hex of a non-negative safe integer, zero-padded to `width`. */
const hex = (n: number, width: number): string => Math.max(0, Math.trunc(n)).toString(16).padStart(width, '0');

/** Commit LSNs repeat for every change of a transaction: the last one's hex is remembered. */
function commitLsnHex(lsn: string | undefined): string {
  if (lsn === lastCommitLsn) return lastCommitHex;
  const h = lsnHex(lsn);
  lastCommitLsn = lsn;
  lastCommitHex = h;
  return h;
}
let lastCommitLsn: string | undefined;
let lastCommitHex = '';

/** 'X/Y' LSN text as 16 hex digits (sorts as the LSN does); zeros for anything unparsable. Plain strings: this runs per change. */
function lsnHex(lsn: string | undefined): string {
  const slash = lsn ? lsn.indexOf('/') : -1;
  if (!lsn || slash < 1 || slash > 8 || lsn.length - slash - 1 < 1 || lsn.length - slash - 1 > 8) return ZERO_LSN;
  for (let i = 0; i < lsn.length; i++) {
    if (i === slash) continue;
    const c = lsn.charCodeAt(i);
    // 0-9, A-F, a-f
    if (!((c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102))) return ZERO_LSN;
  }
  return lsn.slice(0, slash).toLowerCase().padStart(8, '0') + lsn.slice(slash + 1).toLowerCase().padStart(8, '0');
}
const ZERO_LSN = '0000000000000000';

/** `mysql-bin.000042` → 42. */
function binlogIndex(file: string): number {
  const m = /(\d+)$/.exec(file);
  return m ? Number(m[1]) : 0;
}

/**
 * Log-order key of a position, comparable between positions of one source server:
 * PostgreSQL (commit LSN, index in the transaction, change LSN); MySQL/MariaDB (binlog file
 * number, offset, index in the transaction). Relies only on the documented fields of
 * `SourcePosition`; it lives here because only LWW needs an order across partitions.
 */
export function logOrderKey(p: SourcePosition): string {
  if (p.kind === 'pg') return `p${commitLsnHex(p.commitLsn ?? p.lsn)}${hex(p.seq ?? 0, 8)}${lsnHex(p.lsn)}`;
  return `m${hex(binlogIndex(p.file), 8)}${hex(p.pos, 12)}${hex(p.seq ?? 0, 8)}`;
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
