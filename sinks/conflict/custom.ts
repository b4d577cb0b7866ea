import { isAbsolute, resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../../schemas/errors.js';
import type { ConflictResolver } from './types.js';
import { type MergeFunction, type MergeMeta, versionVectorResolver } from './version-vector.js';

/**
 * Custom conflict resolution: a user function `(local, remote, meta) => row | 'delete'` decides
 * concurrent updates (detected with version vectors, see version-vector.ts); everything that is
 * not concurrent is ordered as in version-vector mode. The function must be deterministic and a
 * join (commutative, associative, idempotent) for every node to reach the same row; the
 * rows it gets carry no mesh bookkeeping columns.
 *
 * `conflict.resolver` names either a function registered in this process (`registerResolver`,
 * tests and embedding applications) or a module file (absolute, or relative to the working
 * directory) whose default export, or export `resolve`, is the function. Modules are loaded
 * once, before the sinks start (`loadResolvers`), so `createResolver` stays synchronous.
 */

export type { MergeFunction, MergeMeta };

const registry = new Map<string, MergeFunction>();

export function registerResolver(name: string, fn: MergeFunction): void {
  registry.set(name, fn);
}

/** Imports the resolver module (idempotent). */
export async function loadResolver(spec: string, baseDir = process.cwd()): Promise<MergeFunction> {
  const known = registry.get(spec);
  if (known) return known;
  const file = isAbsolute(spec) ? spec : resolvePath(baseDir, spec);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError([`conflict.resolver: cannot load ${spec}: ${(err as Error).message}`]);
  }
  const fn = (typeof mod.default === 'function' ? mod.default : mod.resolve) as MergeFunction | undefined;
  if (typeof fn !== 'function') throw new ConfigError([`conflict.resolver: ${spec} exports no function (default export or \`resolve\`)`]);
  registry.set(spec, fn);
  return fn;
}

export function customResolver(spec: string | undefined, field = 'conflict.resolver'): ConflictResolver {
  if (spec === undefined) throw new ConfigError([`${field}: required with strategy custom (a module path or a registered name)`]);
  const fn = registry.get(spec);
  if (!fn) throw new ConfigError([`${field}: "${spec}" is not loaded (load it with loadResolvers before starting the sinks, or registerResolver)`]);
  return versionVectorResolver({ name: `custom:${spec}`, merge: fn });
}
