import { type SinkFactory, configuredReplicaSink } from '../factory.js';
import { postgresPool } from './connection.js';
import { postgresDialect } from './dialect.js';

/**
 * PostgreSQL replica; tables land where sinks/naming.ts says. Replica transactions commit with
 * `synchronous_commit = off`, as PostgreSQL's own apply worker does: rows and their offsets are
 * lost or kept together in a crash, so a replay repairs it (exactly-once effect holds).
 */
export const postgresSink = ((cfg, ctx) =>
  configuredReplicaSink(cfg, ctx, {
    kind: 'postgres',
    dialect: postgresDialect(),
    pool: postgresPool(cfg.url, { max: cfg.concurrency + 2, log: ctx.log, applicationName: `cdc-sink-${cfg.name}`, initSql: cfg.initSql }),
    beginSql: ['SET LOCAL synchronous_commit = off', ...cfg.beginSql],
  })) satisfies SinkFactory;
