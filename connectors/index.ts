import type { PipelineConfig, SourceConfig } from '../config/schema.js';
import { urlKind } from '../config/schema.js';
import { CdcError } from '../schemas/errors.js';
import type { SourceConnector } from './source.js';
import { type PostgresSourceHooks, createPostgresSource } from './postgres/index.js';
import { type MysqlSourceHooks, createMysqlSource } from './mysql/index.js';

export type { SourceConnector, SourceContext, SourceBatch, SourceRecord } from './source.js';

/** Builds the connector a source's URL calls for. */
export async function createSource(source: SourceConfig, cfg: PipelineConfig, hooks: PostgresSourceHooks & MysqlSourceHooks = {}): Promise<SourceConnector> {
  const kind = urlKind(source.url);
  // hooks: the snapshot engine's start-up hooks (pipeline/snapshot/initial.ts).
  if (kind === 'postgres') return createPostgresSource(source, cfg, hooks.onSlotCreated ? { onSlotCreated: hooks.onSlotCreated } : {});
  if (kind === 'mysql') return createMysqlSource(source, cfg, hooks.onFirstStart ? { onFirstStart: hooks.onFirstStart } : {});
  void cfg;
  throw new CdcError(`source ${source.name}: the ${kind} source connector is not available in this build yet`, { retriable: false, code: 'UNSUPPORTED' });
}
