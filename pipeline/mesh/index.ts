import type { PipelineConfig, SourceConfig } from '../../config/schema.js';
import type { SourceConnector } from '../../connectors/source.js';
import type { Logger } from '../../util/log.js';
import { retry } from '../../util/retry.js';
import { meshNodeOf, meshNodes } from './config.js';
import { prepareMeshNode } from './setup.js';
import { meshSource } from './source.js';

export { APPLY_ORIGINS, CLOCK_TABLE, expandMesh, MESH_LOCK_KEY, type MeshNode, meshNodeOf, meshNodes, OUTBOX_TABLE, pgName } from './config.js';
export { MESH_COLUMNS, prepareMeshNode, tblKey, VV_COLUMNS } from './setup.js';
export { meshSource, meshTransform } from './source.js';

/**
 * Prepares the databases of the mesh nodes this process runs (all, or those named in `only`);
 * idempotent. Call before starting their sources and sinks.
 */
export async function prepareMesh(cfg: PipelineConfig, log: Logger, only?: Set<string>): Promise<void> {
  if (!cfg.mesh) return;
  for (const node of meshNodes(cfg.mesh)) {
    if (only && !only.has(node.name)) continue;
    const mesh = cfg.mesh;
    // An unreachable node is waited for (retriable); a misconfigured one fails at once.
    await retry(() => prepareMeshNode(mesh, node, log), {
      onRetry: (err, attempt, delayMs) => log.warn({ node: node.name, err: (err as Error).message, attempt, delayMs }, 'mesh node setup failed; retrying'),
    });
  }
}

/** The connector of a mesh node's source wrapped by the mesh transform; other sources unchanged. */
export function wrapMeshSource(cfg: PipelineConfig, source: SourceConfig, connector: SourceConnector): SourceConnector {
  const node = meshNodeOf(cfg, source.name);
  if (!node || !cfg.mesh) return connector;
  return meshSource(connector, { node: node.name, metaSchema: cfg.mesh.metaSchema });
}

/** True for the sources a mesh expanded (they stream only: a mesh node joins with its data in place). */
export function isMeshSource(cfg: PipelineConfig, name: string): boolean {
  return meshNodeOf(cfg, name) !== undefined;
}
