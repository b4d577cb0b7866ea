import type { ConflictOptions } from '../../config/schema.js';
import { ConfigError } from '../../schemas/errors.js';
import { lwwResolver } from './lww.js';
import { noneResolver } from './none.js';
import type { ConflictResolver } from './types.js';

export type { ConflictKind, ConflictResolver, LocalState, RemoteChange, Resolution, ResolveMeta } from './types.js';
export { compareVersions, formatVersion, logOrderKey, type RowVersion, versionOf } from './version.js';
export { lwwResolver, noneResolver };

/** The resolver a sink's `conflict.strategy` names. */
export function createResolver(o: ConflictOptions, field = 'conflict.strategy'): ConflictResolver {
  switch (o.strategy) {
    case 'lww':
      return lwwResolver();
    case 'none':
      return noneResolver();
    default:
      throw new ConfigError([`${field}: "${o.strategy}" is not available in this build yet (use lww or none)`]);
  }
}
