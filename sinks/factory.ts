import type { SinkConfig } from '../config/schema.js';
import type { Logger } from '../util/log.js';
import { createResolver } from './conflict/index.js';
import { replicaTableName } from './naming.js';
import { type ReplicaSinkOptions, createReplicaSink } from './replica.js';
import type { Sink } from './sink.js';

export interface SinkContext {
  log: Logger;
  /** Rows per statement (tests use small values to exercise chunking). */
  statementRows?: number;
}

/** Builds the sink for one `sinks[]` entry; each dialect folder exports one (`satisfies SinkFactory`). */
export type SinkFactory = (cfg: SinkConfig, ctx: SinkContext) => Sink;

/** A replica sink of one dialect, with everything the `sinks[]` entry decides filled in. */
export function configuredReplicaSink(
  cfg: SinkConfig,
  ctx: SinkContext,
  dialect: Pick<ReplicaSinkOptions, 'kind' | 'dialect' | 'pool' | 'beginSql'>,
): Sink {
  return createReplicaSink({
    ...dialect,
    name: cfg.name,
    mapName: (id) => replicaTableName(cfg, id),
    metaSchema: cfg.metaSchema,
    dropColumns: cfg.dropColumns,
    resolver: createResolver(cfg.conflict),
    tombstoneHorizonDays: cfg.conflict.tombstoneHorizonDays,
    logConflicts: cfg.conflict.logConflicts,
    log: ctx.log,
    statementRows: ctx.statementRows,
  });
}
