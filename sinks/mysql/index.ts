import { type SinkFactory, configuredReplicaSink } from '../factory.js';
import { mysqlPool } from './connection.js';
import { mysqlDialect } from './dialect.js';

/** MySQL / MariaDB replica; tables land where sinks/naming.ts says. */
export const mysqlSink = ((cfg, ctx) =>
  configuredReplicaSink(cfg, ctx, {
    kind: 'mysql',
    dialect: mysqlDialect(),
    pool: mysqlPool(cfg.url, { max: cfg.concurrency + 2, log: ctx.log, database: cfg.metaSchema, initSql: cfg.initSql }),
    beginSql: cfg.beginSql,
  })) satisfies SinkFactory;
