import type { PipelineConfig, SinkConfig, SourceConfig } from '../../config/schema.js';
import { urlKind } from '../../config/schema.js';
import { mysqlSnapshotReader } from '../../connectors/mysql/snapshot.js';
import { pgSnapshotReader } from '../../connectors/postgres/snapshot.js';
import type { SnapshotReader } from '../../connectors/snapshot.js';
import { ConfigError } from '../../schemas/errors.js';
import type { TableId } from '../../schemas/table-schema.js';
import { replicaTableName } from '../../sinks/naming.js';

/** Opens the chunk reader of a database URL's dialect. */
export async function openReader(url: string, o: { include?: string[]; exclude?: string[]; byteOrder?: boolean; applicationName?: string } = {}): Promise<SnapshotReader> {
  const kind = urlKind(url);
  if (kind === 'postgres') return pgSnapshotReader({ url, ...o });
  if (kind === 'mysql') return mysqlSnapshotReader({ url, ...o });
  throw new ConfigError([`expected a postgres:// or mysql:// URL`]);
}

/**
 * Tables a source uses for its own bookkeeping (heartbeats, snapshot signals): captured or
 * written by the pipeline itself, never replicated as data, so never compared.
 */
export function internalTables(source: SourceConfig): string[] {
  const kind = urlKind(source.url);
  if (kind === 'postgres') return [source.postgres?.heartbeatTable ?? 'public.cdc_heartbeat', ...(source.postgres?.signalTable ? [source.postgres.signalTable] : [])];
  return source.mysql?.signalTable ? [source.mysql.signalTable] : [];
}

export function findSource(cfg: PipelineConfig, name: string | undefined): SourceConfig {
  const s = name === undefined ? cfg.sources[0] : cfg.sources.find((x) => x.name === name);
  if (!s) throw new ConfigError([name === undefined ? 'sources: the config has no source' : `--source: no source named "${name}"`]);
  return s;
}

/** The sink named, or the only sink that consumes the source. */
export function findSink(cfg: PipelineConfig, source: SourceConfig, name: string | undefined): SinkConfig {
  if (name !== undefined) {
    const k = cfg.sinks.find((x) => x.name === name);
    if (!k) throw new ConfigError([`--sink: no sink named "${name}"`]);
    return k;
  }
  const candidates = cfg.sinks.filter((k) => k.sources === undefined || k.sources.includes(source.name));
  if (candidates.length !== 1) {
    throw new ConfigError([`--sink: ${candidates.length === 0 ? 'no sink consumes' : 'several sinks consume'} source "${source.name}"; name one`]);
  }
  return candidates[0]!;
}

/**
 * Where a source table lives on a sink's replica: the sinks' own rule (sinks/naming.ts), as a
 * TableId of the replica's dialect (PostgreSQL: a schema inside the URL's database).
 */
export function replicaTable(source: TableId, sink: SinkConfig, replicaDb: string): TableId {
  const n = replicaTableName(sink, source);
  if (urlKind(sink.url) === 'mysql') return { db: n.schema, schema: null, table: n.table };
  return { db: replicaDb, schema: n.schema, table: n.table };
}

/** Parses `schema.table` / `db.table` (optionally quoted with "" or ``) into a TableId of the source's dialect. */
export function parseTableArg(arg: string, kind: 'postgres' | 'mysql', defaultDb: string): TableId {
  const m = /^(?:"((?:[^"]|"")+)"|`((?:[^`]|``)+)`|([^."`]+))(?:\.(?:"((?:[^"]|"")+)"|`((?:[^`]|``)+)`|([^."`]+)))?$/.exec(arg);
  if (!m) throw new ConfigError([`${arg}: expected schema.table (PostgreSQL) or db.table (MySQL)`]);
  const first = (m[1]?.replace(/""/g, '"') ?? m[2]?.replace(/``/g, '`') ?? m[3])!;
  const second = m[4]?.replace(/""/g, '"') ?? m[5]?.replace(/``/g, '`') ?? m[6];
  if (kind === 'postgres') return second === undefined ? { db: defaultDb, schema: 'public', table: first } : { db: defaultDb, schema: first, table: second };
  return second === undefined ? { db: defaultDb, schema: null, table: first } : { db: first, schema: null, table: second };
}

export function tableKey(id: TableId): string {
  return id.schema === null ? `${id.db}.${id.table}` : `${id.schema}.${id.table}`;
}
