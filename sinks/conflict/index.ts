import type { ConflictOptions } from '../../config/schema.js';
import { ConfigError } from '../../schemas/errors.js';
import { customResolver, loadResolver } from './custom.js';
import { lwwResolver } from './lww.js';
import { noneResolver } from './none.js';
import type { ConflictResolver, ResolveMeta } from './types.js';
import { versionVectorResolver } from './version-vector.js';

export type { ConflictKind, ConflictResolver, LocalState, RemoteChange, Resolution, ResolveMeta } from './types.js';
export { compareVersions, formatVersion, logOrderKey, type RowVersion, versionOf } from './version.js';
export { lwwResolver, noneResolver };
export { customResolver, loadResolver, type MergeFunction, type MergeMeta, registerResolver } from './custom.js';
export { compareVectors, type VersionVector, versionVectorResolver } from './version-vector.js';
export { hlcLocal, hlcObserve } from './hlc.js';

type Strategy = ConflictOptions['strategy'];

/**
 * The strategy (and resolver) for one table: `conflict.tables[<schema or db>.<table>]`, else
 * `conflict.tables[<table>]`, else the sink's own. `table.schema` is the PostgreSQL schema or the
 * MySQL database.
 */
export function strategyFor(o: ConflictOptions, table: { schema: string | null; table: string }): { strategy: Strategy; resolver?: string } {
  const t = o.tables;
  const hit = t ? (table.schema !== null ? t[`${table.schema}.${table.table}`] : undefined) ?? t[table.table] : undefined;
  if (hit) return hit.resolver !== undefined ? { strategy: hit.strategy, resolver: hit.resolver } : { strategy: hit.strategy };
  return o.resolver !== undefined ? { strategy: o.strategy, resolver: o.resolver } : { strategy: o.strategy };
}

/** The resolver a sink's `conflict.strategy` names (per table when `conflict.tables` is set). */
export function createResolver(o: ConflictOptions, field = 'conflict.strategy'): ConflictResolver {
  if (o.tables && Object.keys(o.tables).length > 0) return perTableResolver(o, field);
  return singleResolver(o.strategy, o.resolver, field);
}

/** One resolver per distinct strategy, chosen by the change's table. */
function perTableResolver(o: ConflictOptions, field: string): ConflictResolver {
  const byTable = new Map<string, ConflictResolver>();
  const build = (s: { strategy: Strategy; resolver?: string }, f: string) => singleResolver(s.strategy, s.resolver, f);
  const base = build({ strategy: o.strategy, ...(o.resolver !== undefined ? { resolver: o.resolver } : {}) }, field);
  const all = [base, ...Object.entries(o.tables ?? {}).map(([k, v]) => build(v, `${field.replace(/\.strategy$/, '')}.tables.${k}.strategy`))];
  if (new Set(all.map((r) => r.versioned)).size > 1) {
    throw new ConfigError([`${field}: per-table strategies must all compare versions or all not (none cannot be mixed with the others)`]);
  }
  const pick = (id: ResolveMeta['table']): ConflictResolver => {
    const key = `${id.schema ?? id.db}\u0000${id.table}`;
    let r = byTable.get(key);
    if (!r) {
      const s = strategyFor(o, { schema: id.schema ?? id.db, table: id.table });
      r = s.strategy === o.strategy && s.resolver === o.resolver ? base : build(s, field);
      byTable.set(key, r);
    }
    return r;
  };
  return {
    name: 'per-table',
    versioned: base.versioned,
    needsLocalRow: all.some((r) => r.needsLocalRow),
    resolve: (local, remote, meta) => pick(meta.table).resolve(local, remote, meta),
  };
}

/** Loads the resolver modules a config's custom strategies name (before sinks are created). */
export async function loadResolvers(options: ConflictOptions[], baseDir?: string): Promise<void> {
  for (const o of options) {
    const specs = [o.strategy === 'custom' ? o.resolver : undefined, ...Object.values(o.tables ?? {}).map((t) => (t.strategy === 'custom' ? t.resolver : undefined))];
    for (const s of specs) if (s !== undefined) await loadResolver(s, baseDir);
  }
}

function singleResolver(strategy: Strategy, resolver: string | undefined, field: string): ConflictResolver {
  switch (strategy) {
    case 'version-vector':
      return versionVectorResolver();
    case 'custom':
      return customResolver(resolver, field.replace(/strategy$/, 'resolver'));
    case 'lww':
      return lwwResolver();
    case 'none':
      return noneResolver();
    default:
      throw new ConfigError([`${field}: unknown strategy "${String(strategy)}"`]);
  }
}
