import { type PipelineConfig, type PostgresSourceOptions, type SourceConfig, postgresSourceOptions } from '../../config/schema.js';
import { splitQualified } from './catalog.js';
import { type TableFilter, compileTableFilter } from './tables.js';

/** What a new slot offers the snapshot engine before streaming starts (see docs/postgres-source.md). */
export interface SlotCreatedInfo {
  slotName: string;
  /** Exported snapshot: `SET TRANSACTION SNAPSHOT '<name>'` in a REPEATABLE READ transaction reads the tables as of the slot's start. */
  snapshotName: string | null;
  /** LSN ('X/Y') from which the stream continues after the snapshot. */
  consistentPoint: string;
}

/** Options of the PostgreSQL connector that are not in the config file (hooks for other parts of the pipeline). */
export interface PostgresSourceHooks {
  /**
   * Called once when `run` had to create the slot, between CREATE_REPLICATION_SLOT and
   * START_REPLICATION, while the replication connection keeps the exported snapshot alive. The
   * stream starts when the returned promise resolves; a rejection aborts the run (and the new
   * slot is dropped, so the next run takes the snapshot again). When set, the slot is created
   * with SNAPSHOT 'export', otherwise with 'nothing'.
   */
  onSlotCreated?: (info: SlotCreatedInfo) => Promise<void>;
}

export interface ResolvedOptions extends PostgresSourceOptions {
  slot: string;
  publication: string;
  /** `schema.table` of the heartbeat table, or null when heartbeats are off. */
  heartbeatTable: string;
  heartbeatEnabled: boolean;
  filter: TableFilter;
  /** Node id for `source.origin` when the transaction has no replication origin. */
  origin: string;
  /** Skip transactions applied under a replication origin (`sources[].localOnly`, multi-master). */
  localOnly: boolean;
  url: string;
  sourceName: string;
  /** The pipeline's config (kafka.encoding / jsonSchemas size the batches); absent in CLI helpers. */
  pipeline?: Pick<PipelineConfig, 'kafka'>;
}

/** Default names are `cdc_<source name>`, lower-cased with '-' -> '_' (slot names allow only [a-z0-9_]). */
export function defaultName(sourceName: string): string {
  return `cdc_${sourceName.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`;
}

export function resolveOptions(source: SourceConfig, cfg?: PipelineConfig): ResolvedOptions {
  const pg = source.postgres ?? postgresSourceOptions.parse({});
  const hb = splitQualified(pg.heartbeatTable);
  const signal = pg.signalTable === undefined ? undefined : splitQualified(pg.signalTable);
  return {
    ...pg,
    signalTable: signal === undefined ? undefined : `${signal.schema}.${signal.table}`,
    slot: pg.slot ?? defaultName(source.name),
    publication: pg.publication ?? defaultName(source.name),
    heartbeatTable: `${hb.schema}.${hb.table}`,
    heartbeatEnabled: pg.heartbeatIntervalMs > 0,
    filter: compileTableFilter(source.tables.include, source.tables.exclude),
    origin: source.origin ?? source.name,
    // Read loosely: the option belongs to the multi-master work and may not be in every config schema.
    localOnly: (source as { localOnly?: boolean }).localOnly === true,
    url: source.url,
    sourceName: source.name,
    ...(cfg ? { pipeline: cfg } : {}),
  };
}
