import type { SinkConfig } from '../config/schema.js';
import { urlKind } from '../config/schema.js';
import { ConfigError } from '../schemas/errors.js';
import type { SinkContext } from './factory.js';
import { mysqlSink } from './mysql/index.js';
import { postgresSink } from './postgres/index.js';
import type { Sink } from './sink.js';

export type { SinkContext, SinkFactory } from './factory.js';
export type { ApplyHooks, ApplyResult, DeadLetter, Lease, OffsetAdvance, RecordRef, Sink, SinkBatch, SinkChange, SinkTransaction } from './sink.js';
export { partitionKey } from './sink.js';
export { replicaTableName } from './naming.js';

/** The sink a `sinks[]` entry's URL calls for. */
export function createSink(cfg: SinkConfig, ctx: SinkContext): Sink {
  const kind = urlKind(cfg.url);
  if (kind === 'postgres') return postgresSink(cfg, ctx);
  if (kind === 'mysql') return mysqlSink(cfg, ctx);
  throw new ConfigError([`sinks.${cfg.name}.url: expected postgres:// or mysql:// URL`]);
}
