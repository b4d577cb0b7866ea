import {
  type MeshConfig,
  type MeshNodeConfig,
  type PipelineConfig,
  type SinkConfig,
  type SourceConfig,
  sinkConfig,
  sourceConfig,
  urlKind,
} from '../../config/schema.js';
import { lockKey } from '../../sinks/dialect.js';
import { mysqlQuote } from '../../sinks/mysql/dialect.js';
import { pgQuote } from '../../sinks/postgres/dialect.js';

/**
 * Topology expansion: a `mesh` block becomes, per node, one source (what local clients write on
 * that node, `localOnly`) and one sink (the changes of every other node), so `cdc run` and the
 * rest of the pipeline need no mesh-specific code paths beyond the small hooks named here.
 */

/** A mesh node with its defaults resolved. */
export interface MeshNode {
  name: string;
  index: number;
  kind: 'postgres' | 'mysql';
  url: string;
  /** PostgreSQL schema / MySQL database of the mesh tables on this node. */
  schema: string;
  /** Database name in the URL (PostgreSQL: the database; MySQL: same as `schema`). */
  database: string;
  /** MySQL/MariaDB: server_id of the apply sessions. */
  applyServerId: number;
  /** MySQL/MariaDB: server_id the binlog reader registers with. */
  readerServerId: number;
}

/** Table that carries each local delete's version from the trigger to the node's source (see setup). */
export const OUTBOX_TABLE = 'mesh_outbox';
export const CLOCK_TABLE = 'mesh_clock';

/** Advisory lock shared by local writers and taken exclusively by apply transactions (PostgreSQL). */
export const MESH_LOCK_KEY: bigint = lockKey('cdc-mesh-apply');

function urlDatabase(url: string): string {
  try {
    return decodeURIComponent(new URL(url.replace(/^mariadb:/i, 'mysql:')).pathname.replace(/^\//, ''));
  } catch {
    return '';
  }
}

export function meshNodes(mesh: MeshConfig): MeshNode[] {
  return mesh.nodes.map((n: MeshNodeConfig, index) => {
    const kind = urlKind(n.url)!;
    const database = urlDatabase(n.url) || (kind === 'postgres' ? 'postgres' : '');
    return {
      name: n.name,
      index,
      kind,
      url: n.url,
      schema: kind === 'postgres' ? (n.schema ?? 'public') : database,
      database,
      applyServerId: n.applyServerId ?? 4_000_000_000 + index,
      readerServerId: n.readerServerId ?? 5400 + index,
    };
  });
}

/** Slot / publication / origin names allow only [a-z0-9_]. */
export function pgName(prefix: string, node: string): string {
  return `${prefix}_${node.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);
}

/** The replication origins an apply session may take: `<prefix>_0` .. `<prefix>_<n-1>`. */
export const APPLY_ORIGINS = 16;

function nodeSource(mesh: MeshConfig, node: MeshNode): SourceConfig {
  const include = [...mesh.tables.map((t) => `${node.schema}.${t}`), `${mesh.metaSchema}.${OUTBOX_TABLE}`];
  const base = { name: node.name, url: node.url, origin: node.name, localOnly: true, tables: { include, exclude: [] } };
  if (node.kind === 'postgres') {
    const slot = pgName('cdc_mesh', node.name);
    return sourceConfig.parse({ ...base, postgres: { slot, publication: slot, heartbeatIntervalMs: mesh.heartbeatIntervalMs } });
  }
  return sourceConfig.parse({ ...base, mysql: { serverId: node.readerServerId } });
}

function nodeSink(mesh: MeshConfig, node: MeshNode, all: MeshNode[]): SinkConfig {
  const meta = mesh.metaSchema;
  const session =
    node.kind === 'postgres'
      ? {
          // Every apply session runs under a replication origin: the node's own source skips what it wrote.
          initSql: [`SELECT ${pgQuote(meta)}.cdc_mesh_apply_session('${pgName('cdc_mesh', node.name)}', ${APPLY_ORIGINS})`],
          // Apply transactions exclude local writers (who share this lock in the mesh triggers).
          beginSql: [`SELECT pg_advisory_xact_lock(${MESH_LOCK_KEY})`],
        }
      : {
          // Rows written under another server_id are skipped by the node's own source and tell the triggers "applied".
          initSql: [`SET SESSION server_id = ${node.applyServerId}`],
          beginSql: [`SELECT l FROM ${mysqlQuote(meta)}.${mysqlQuote(CLOCK_TABLE)} WHERE id = 1 FOR UPDATE`],
        };
  return sinkConfig.parse({
    name: node.name,
    url: node.url,
    sources: all.filter((n) => n.name !== node.name).map((n) => n.name),
    mode: mesh.mode,
    batchSize: mesh.batchSize,
    targetSchema: node.schema,
    metaSchema: meta,
    conflict: mesh.conflict,
    ...session,
  });
}

/**
 * The config with the mesh's sources and sinks appended (a no-op without a `mesh` block). Each
 * node's source and sink carry the node's name, so `cdc run --only <node>` runs one region.
 */
export function expandMesh(cfg: PipelineConfig): PipelineConfig {
  const mesh = cfg.mesh;
  if (!mesh) return cfg;
  const nodes = meshNodes(mesh);
  return {
    ...cfg,
    sources: [...cfg.sources, ...nodes.map((n) => nodeSource(mesh, n))],
    sinks: [...cfg.sinks, ...nodes.map((n) => nodeSink(mesh, n, nodes))],
  };
}

/** The mesh node a source or sink of an expanded config belongs to. */
export function meshNodeOf(cfg: PipelineConfig, name: string): MeshNode | undefined {
  return cfg.mesh ? meshNodes(cfg.mesh).find((n) => n.name === name) : undefined;
}
