import type { MergeFunction } from '../../sinks/conflict/index.js';

/**
 * The custom resolver of the mesh tests (loaded by the node processes from the config's
 * `conflict.tables.tagged.resolver`): concurrent updates keep the union of their tags (a
 * grow-only set: writers only add tags), every other column per-column last writer wins.
 */
const union = (a: unknown, b: unknown): string =>
  [...new Set([...String(a ?? '').split(','), ...String(b ?? '').split(',')].filter((t) => t !== ''))].sort().join(',');

const merge: MergeFunction = (local, remote, meta) => ({ ...meta.lww, tags: union(local.tags, remote.tags) });

export default merge;
