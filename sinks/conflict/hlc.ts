/**
 * Hybrid logical clocks (Kulkarni et al., "Logical Physical Clocks", 2014), as the mesh uses them
 * for versions: one 64-bit number of microseconds since the epoch, so a version compares and
 * stores like a commit timestamp (`_cdc_ts`, `source.ts_us`) and stays within the clock skew of
 * real time. The logical counter of the paper lives in the low microseconds: when the wall clock
 * has not moved past what was observed, the next reading is "observed + 1".
 *
 * Where the clock is kept: per node, in the node's database (`mesh_clock.l`, the highest version
 * applied from any other node), because local writes are versioned *at write time* by the mesh
 * triggers (pipeline/mesh/setup.ts), inside the writing transaction:
 *
 *   local write:  ts = max(wall, l + 1, previous version of the row + 1, its tombstone + 1)
 *   apply:        l  = max(l, version applied)            (the "receive" rule, same transaction)
 *
 * Local writes do not advance `l` (that would serialise every writer on one row); they need not:
 * the per-row terms keep each key's versions increasing on its node, and `l` carries causality
 * across nodes. These functions are the reference the triggers implement (and the unit tests
 * check the properties the docs prove: causality, bounded drift, convergence of LWW on them).
 */

/** The version a local write gets (the trigger's formula). */
export function hlcLocal(o: { wallUs: bigint; clock: bigint; previous?: bigint | null; tombstone?: bigint | null }): bigint {
  let ts = o.wallUs > o.clock + 1n ? o.wallUs : o.clock + 1n;
  if (o.previous != null && o.previous + 1n > ts) ts = o.previous + 1n;
  if (o.tombstone != null && o.tombstone + 1n > ts) ts = o.tombstone + 1n;
  return ts;
}

/** The clock after applying a remote version (the apply triggers' formula). */
export function hlcObserve(clock: bigint, remote: bigint): bigint {
  return remote > clock ? remote : clock;
}

/**
 * How far a version is ahead of a wall clock reading, in microseconds (negative: behind). For a
 * healthy mesh it stays below the largest clock offset between nodes plus the write rate's
 * logical increments (HLC's bounded-drift property).
 */
export function hlcDrift(ts: bigint, wallUs: bigint): bigint {
  return ts - wallUs;
}

/** Microseconds since the epoch of a `Date.now()`-style reading. */
export function wallUs(ms: number = Date.now()): bigint {
  return BigInt(Math.floor(ms)) * 1000n;
}
