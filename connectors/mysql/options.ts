import { type MysqlSourceOptions, type PipelineConfig, type SourceConfig, mysqlSourceOptions } from '../../config/schema.js';
import type { MysqlPosition } from '../../schemas/position.js';
import { sourceTopics } from '../../pipeline/topics.js';
import { type TableFilter, tableFilter } from './filter.js';

/** What a source with no stored position offers the snapshot engine before streaming starts. */
export interface FirstStartInfo {
  /** Current end of the binlog (file, position, GTID set): where the stream starts by default. */
  position: MysqlPosition;
}

/** Options of the MySQL connector that are not in the config file (hooks for other parts of the pipeline). */
export interface MysqlSourceHooks {
  /**
   * Called when `run` finds no stored checkpoint. It may take a snapshot and return the position
   * its consistent read corresponds to; the stream then starts there. Returning nothing streams
   * from `info.position`. Required for `startFrom: snapshot`.
   */
  onFirstStart?: (info: FirstStartInfo) => Promise<MysqlPosition | void>;
}

export interface ResolvedOptions extends MysqlSourceOptions {
  serverId: number;
  reportHost: string;
  sourceName: string;
  url: string;
  origin: string;
  /** Capture only local clients' writes (`sources[].localOnly`, multi-master). */
  localOnly: boolean;
  filter: TableFilter;
  schemaHistoryTopic: string;
  replicationFactor: number;
  /** The pipeline's config (kafka.encoding / jsonSchemas size the batches). */
  pipeline: Pick<PipelineConfig, 'kafka'>;
}

/**
 * Without `tables.include`, a URL naming a database captures that database only (what users of
 * Debezium's `database.include.list` expect, and what the snapshot reads); a URL without one
 * captures every non-system database.
 */
export function defaultInclude(url: string): string[] | undefined {
  try {
    const db = decodeURIComponent(new URL(url.replace(/^mariadb:/i, 'mysql:')).pathname.replace(/^\//, ''));
    return db === '' ? undefined : [`${db}.*`];
  } catch {
    return undefined;
  }
}

/** The resolved options of `cfg.sources[i]`. */
export function resolveOptions(source: SourceConfig, cfg: PipelineConfig): ResolvedOptions {
  const my = source.mysql ?? mysqlSourceOptions.parse({});
  const index = Math.max(0, cfg.sources.findIndex((s) => s.name === source.name));
  // Same prefix as pipeline/source-runner.ts topicPrefix(): the history sits beside the source's topics.
  const topics = sourceTopics(cfg.kafka.topicPrefix ?? cfg.name, source.name);
  return {
    ...my,
    serverId: my.serverId ?? 5400 + index,
    reportHost: my.reportHost ?? `cdc-${cfg.name}-${source.name}`.slice(0, 60),
    sourceName: source.name,
    url: source.url,
    origin: source.origin ?? source.name,
    localOnly: source.localOnly,
    filter: tableFilter({ include: source.tables.include ?? defaultInclude(source.url), exclude: source.tables.exclude, signalTable: my.signalTable }),
    schemaHistoryTopic: my.schemaHistoryTopic ?? `${topics.prefix}.schema-history`,
    replicationFactor: cfg.kafka.replicationFactor,
    pipeline: cfg,
  };
}
