import type { ConflictResolver } from './types.js';
import { compareVersions } from './version.js';

/**
 * Last writer wins by source commit time, ties broken by origin id, then by log order within the
 * origin (see RowVersion). A delete wins like any write and leaves a tombstone, so an older insert
 * or update arriving later cannot resurrect the row.
 */
export function lwwResolver(): ConflictResolver {
  return {
    name: 'lww',
    versioned: true,
    needsLocalRow: false,
    resolve(local, remote) {
      if (local.version === null) return { outcome: 'remote' };
      const c = compareVersions(remote.version, local.version);
      if (c === 0) return { outcome: 'local' }; // the same change again (replay or source duplicate)
      if (c < 0) return { outcome: 'local', conflict: 'older' };
      // Another origin's row or delete tombstone replaced (multi-master): recorded either way. A row
      // with no origin ('': the version columns' default) was never replicated (seeded on the
      // replica before the sink ran): replacing it is no conflict.
      if (local.version.origin !== remote.version.origin && local.version.origin !== '') return { outcome: 'remote', conflict: 'origin-differs' };
      return { outcome: 'remote' };
    },
  };
}
