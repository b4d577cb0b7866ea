import type { SinkConfig } from '../config/schema.js';
import type { Logger } from '../util/log.js';
import type { Sink } from './sink.js';

export interface SinkContext {
  log: Logger;
  /** Rows per statement (tests use small values to exercise chunking). */
  statementRows?: number;
}

/** Builds the sink for one `sinks[]` entry; each dialect folder exports one (`satisfies SinkFactory`). */
export type SinkFactory = (cfg: SinkConfig, ctx: SinkContext) => Sink;
