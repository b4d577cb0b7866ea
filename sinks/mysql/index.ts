import { createResolver } from '../conflict/index.js';
import type { SinkFactory } from '../factory.js';
import { replicaTableName } from '../naming.js';
import { createReplicaSink } from '../replica.js';
import { mysqlPool } from './connection.js';
import { mysqlDialect } from './dialect.js';

/** MySQL / MariaDB replica; tables land where sinks/naming.ts says. */
export const mysqlSink = ((cfg, ctx) =>
  createReplicaSink({
    name: cfg.name,
    kind: 'mysql',
    dialect: mysqlDialect(),
    pool: mysqlPool(cfg.url, { max: cfg.concurrency + 2, log: ctx.log, database: cfg.metaSchema, initSql: cfg.initSql }),
    mapName: (id) => replicaTableName(cfg, id),
    metaSchema: cfg.metaSchema,
    dropColumns: cfg.dropColumns,
    resolver: createResolver(cfg.conflict),
    tombstoneHorizonDays: cfg.conflict.tombstoneHorizonDays,
    logConflicts: cfg.conflict.logConflicts,
    log: ctx.log,
    statementRows: ctx.statementRows,
    beginSql: cfg.beginSql,
  })) satisfies SinkFactory;
