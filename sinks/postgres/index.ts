import { createResolver } from '../conflict/index.js';
import type { SinkFactory } from '../factory.js';
import { replicaTableName } from '../naming.js';
import { createReplicaSink } from '../replica.js';
import { postgresPool } from './connection.js';
import { postgresDialect } from './dialect.js';

/**
 * PostgreSQL replica; tables land where sinks/naming.ts says. Replica transactions commit with
 * `synchronous_commit = off`, as PostgreSQL's own apply worker does: rows and their offsets are
 * lost or kept together in a crash, so a replay repairs it (exactly-once effect holds).
 */
export const postgresSink = ((cfg, ctx) =>
  createReplicaSink({
    name: cfg.name,
    kind: 'postgres',
    dialect: postgresDialect(),
    pool: postgresPool(cfg.url, { max: cfg.concurrency + 2, log: ctx.log, applicationName: `cdc-sink-${cfg.name}`, initSql: cfg.initSql }),
    mapName: (id) => replicaTableName(cfg, id),
    metaSchema: cfg.metaSchema,
    dropColumns: cfg.dropColumns,
    resolver: createResolver(cfg.conflict),
    tombstoneHorizonDays: cfg.conflict.tombstoneHorizonDays,
    logConflicts: cfg.conflict.logConflicts,
    log: ctx.log,
    statementRows: ctx.statementRows,
    beginSql: ['SET LOCAL synchronous_commit = off', ...cfg.beginSql],
  })) satisfies SinkFactory;
