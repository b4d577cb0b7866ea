import type { ConflictResolver } from './types.js';

/**
 * No conflict resolution: changes apply in delivery order (per key, source order) and deletes
 * leave no tombstones. Cheapest; right for one source feeding a replica nobody else writes, in
 * `transaction` mode or with no key changes. A truncate still bounds older rows (see docs/sinks.md).
 */
export function noneResolver(): ConflictResolver {
  return {
    name: 'none',
    versioned: false,
    needsLocalRow: false,
    resolve() {
      return { outcome: 'remote' };
    },
  };
}
