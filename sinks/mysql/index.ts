import { createResolver } from '../conflict/index.js';
import type { SinkFactory } from '../factory.js';
import { createReplicaSink } from '../replica.js';
import { mysqlPool } from './connection.js';
import { mysqlDialect } from './dialect.js';

/**
 * MySQL / MariaDB replica. Tables land in database `targetSchema` (default: the MySQL source's
 * database; for a PostgreSQL source the source database, or `<db>_<schema>` for schemas other
 * than public).
 */
export const mysqlSink = ((cfg, ctx) =>
  createReplicaSink({
    name: cfg.name,
    kind: 'mysql',
    dialect: mysqlDialect(),
    pool: mysqlPool(cfg.url, { max: cfg.concurrency + 2, log: ctx.log, database: cfg.metaSchema }),
    mapName: (id) => ({
      schema: cfg.targetSchema ?? (id.schema === null || id.schema === 'public' ? id.db : `${id.db}_${id.schema}`),
      table: id.table,
    }),
    metaSchema: cfg.metaSchema,
    dropColumns: cfg.dropColumns,
    resolver: createResolver(cfg.conflict),
    tombstoneHorizonDays: cfg.conflict.tombstoneHorizonDays,
    logConflicts: cfg.conflict.logConflicts,
    log: ctx.log,
    statementRows: ctx.statementRows,
  })) satisfies SinkFactory;
