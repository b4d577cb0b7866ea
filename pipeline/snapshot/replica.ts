import { pipeline } from 'node:stream/promises';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { urlKind } from '../../config/schema.js';
import { quoteId } from '../../connectors/mysql/snapshot.js';
import { chunkCopyOutSql, keyRangeSql } from '../../connectors/postgres/snapshot.js';
import type { Chunk } from '../../connectors/snapshot.js';
import type { ColumnSchema, Row, TableId, TableSchema } from '../../schemas/index.js';
import { CdcError } from '../../schemas/errors.js';

/**
 * The bulk path of a snapshot: chunks written straight into a replica (PeerDB's initial load),
 * COPY for PostgreSQL and multi-row INSERT for MySQL/MariaDB. Each chunk is one replica
 * transaction that also records the chunk in `cdc_snapshot_chunks`, so a chunk job redone after
 * a crash finds its marker and does nothing: exactly once, whatever happens between the commit
 * and the job's completion in Redis.
 */

export const MARKER_TABLE = 'cdc_snapshot_chunks';

function qpg(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

function pgTable(id: TableId): string {
  return `${qpg(id.schema ?? 'public')}.${qpg(id.table)}`;
}

export interface ReplicaWriter {
  readonly dialect: 'postgres' | 'mysql';
  /**
   * Creates the marker table, and the replica table (same-dialect copy of the source's types)
   * when missing. A table created here gets its primary key only in `finalize`, after the load,
   * the way pg_dump does it: one sorted index build instead of a B-tree insert per row.
   */
  prepare(runId: string, src: TableSchema, dst: TableId): Promise<void>;
  /** After the last chunk: builds deferred keys. Idempotent. */
  finalize(runId: string, src: TableSchema, dst: TableId): Promise<void>;
  /** Empties the replica table once per run (for CTID chunks, which cannot delete their own range). */
  truncateOnce(runId: string, dst: TableId): Promise<void>;
  /**
   * Writes one chunk in one transaction: deletes the chunk's key range, loads the rows, records
   * the marker. Returns null when the marker says the chunk is already in. `rows` is either a
   * PostgreSQL COPY text stream factory (same dialect) or canonical rows.
   */
  writeChunk(runId: string, chunkKey: string, src: TableSchema, dst: TableId, chunk: Chunk, data: ChunkData): Promise<number | null>;
  close(): Promise<void>;
}

export type ChunkData = { kind: 'pg-copy'; source: pg.Client; snapshotSql?: never } | { kind: 'rows'; rows: () => Promise<Row[]> };

function pgCreateTable(src: TableSchema, dst: TableId): string {
  const cols = src.columns.map((c) => `${qpg(c.name)} ${c.sourceType}${c.nullable ? '' : ' not null'}`);
  if (src.primaryKey.length > 0) cols.push(`primary key (${src.primaryKey.map(qpg).join(', ')})`);
  return `create table if not exists ${pgTable(dst)} (${cols.join(', ')})`;
}

function myCreateTable(src: TableSchema, dst: TableId): string {
  const cols = src.columns.map((c) => `${quoteId(c.name)} ${c.sourceType}${c.nullable ? ' null' : ' not null'}`);
  if (src.primaryKey.length > 0) cols.push(`primary key (${src.primaryKey.map(quoteId).join(', ')})`);
  return `create table if not exists ${quoteId(dst.db)}.${quoteId(dst.table)} (${cols.join(', ')})`;
}

export async function pgReplicaWriter(url: string): Promise<ReplicaWriter> {
  const open = async () => {
    const c = new pg.Client({ connectionString: url, application_name: 'cdc-snapshot-load', options: '-c DateStyle=ISO -c IntervalStyle=iso_8601 -c TimeZone=UTC -c extra_float_digits=3 -c bytea_output=hex' });
    c.on('error', () => undefined);
    await c.connect();
    return c;
  };
  const meta = await open();
  const markerDdl = (schema: string) => `create table if not exists ${qpg(schema)}.${MARKER_TABLE} (run_id text not null, chunk_id text not null, rows bigint not null, done_at timestamptz not null default now(), primary key (run_id, chunk_id))`;
  const prepared = new Set<string>();
  return {
    dialect: 'postgres',
    async prepare(runId, src, dst) {
      const k = `${runId}|${dst.schema}.${dst.table}`;
      if (prepared.has(k)) return;
      if (src.dialect !== 'postgres') throw new CdcError(`direct snapshot into PostgreSQL needs a PostgreSQL source (use snapshot.target: kafka)`, { retriable: false, code: 'CONFIG' });
      const schema = dst.schema ?? 'public';
      await meta.query(`create schema if not exists ${qpg(schema)}`).catch(() => undefined);
      await meta.query(markerDdl(schema));
      await meta.query('begin');
      try {
        await meta.query(`select pg_advisory_xact_lock(hashtext($1))`, [`cdc-prepare/${schema}.${dst.table}`]);
        const exists = await meta.query(`select to_regclass($1) is not null as e`, [pgTable(dst)]);
        if (!exists.rows[0].e) {
          await meta.query(pgCreateTable({ ...src, primaryKey: [] }, dst));
          if (src.primaryKey.length > 0) await meta.query(`insert into ${qpg(schema)}.${MARKER_TABLE} (run_id, chunk_id, rows) values ($1, $2, 0) on conflict do nothing`, [runId, `deferkey:${dst.table}`]);
        }
        await meta.query('commit');
      } catch (err) {
        await meta.query('rollback').catch(() => undefined);
        throw err;
      }
      prepared.add(k);
    },
    async finalize(runId, src, dst) {
      const schema = dst.schema ?? 'public';
      await meta.query('begin');
      try {
        const m = await meta.query(`select rows from ${qpg(schema)}.${MARKER_TABLE} where run_id = $1 and chunk_id = $2 for update`, [runId, `deferkey:${dst.table}`]);
        if (m.rowCount === 1 && Number(m.rows[0].rows) === 0) {
          await meta.query(`alter table ${pgTable(dst)} add primary key (${src.primaryKey.map(qpg).join(', ')})`);
          await meta.query(`update ${qpg(schema)}.${MARKER_TABLE} set rows = 1, done_at = now() where run_id = $1 and chunk_id = $2`, [runId, `deferkey:${dst.table}`]);
        }
        await meta.query('commit');
      } catch (err) {
        await meta.query('rollback').catch(() => undefined);
        throw new CdcError(`building the primary key of ${pgTable(dst)}: ${(err as Error).message}`, { retriable: true, code: 'SNAPSHOT_KEY', cause: err });
      }
    },
    async truncateOnce(runId, dst) {
      const schema = dst.schema ?? 'public';
      await meta.query('begin');
      try {
        const r = await meta.query(`insert into ${qpg(schema)}.${MARKER_TABLE} (run_id, chunk_id, rows) values ($1, $2, 0) on conflict do nothing`, [runId, `truncate:${dst.table}`]);
        if (r.rowCount === 1) await meta.query(`truncate ${pgTable(dst)}`);
        await meta.query('commit');
      } catch (err) {
        await meta.query('rollback').catch(() => undefined);
        throw err;
      }
    },
    async writeChunk(runId, chunkKey, src, dst, chunk, data) {
      const c = await open();
      const schema = dst.schema ?? 'public';
      try {
        await c.query('begin');
        // Lock the marker row first: a second worker on the same chunk (a stalled job picked up
        // while the first is still running) waits here and then finds the marker.
        await c.query(`select pg_advisory_xact_lock(hashtext($1))`, [`${runId}/${chunkKey}`]);
        const m = await c.query(`select 1 from ${qpg(schema)}.${MARKER_TABLE} where run_id = $1 and chunk_id = $2`, [runId, chunkKey]);
        if ((m.rowCount ?? 0) > 0) {
          await c.query('rollback');
          return null;
        }
        // A key range may hold rows from before (a re-snapshot into a used table): replace them.
        // Not in a table this run created (it is empty but for committed chunks, and has no index yet).
        const deferred = await c.query(`select 1 from ${qpg(schema)}.${MARKER_TABLE} where run_id = $1 and chunk_id = $2 and rows = 0`, [runId, `deferkey:${dst.table}`]);
        if (!chunk.ctid && src.primaryKey.length > 0 && deferred.rowCount === 0) {
          const { where, values } = keyRangeSql({ ...src, id: dst }, chunk);
          await c.query(`delete from ${pgTable(dst)} where ${where}`, values);
        }
        let rows: number;
        const cols = src.columns.map((col) => qpg(col.name)).join(', ');
        if (data.kind === 'pg-copy') {
          // Text format: the replica parses what the source printed, so a replica column of a
          // compatible but different type (an existing table) still loads.
          const ingest = c.query(copyFrom(`copy ${pgTable(dst)} (${cols}) from stdin`));
          const out = data.source.query(copyTo(chunkCopyOutSql(src, chunk)));
          await pipeline(out, ingest);
          rows = ingest.rowCount;
        } else {
          const list = await data.rows();
          rows = list.length;
          if (rows > 0) {
            const ingest = c.query(copyFrom(`copy ${pgTable(dst)} (${cols}) from stdin`));
            const text = list.map((r) => src.columns.map((col) => copyText(col, r[col.name] ?? null)).join('\t')).join('\n') + '\n';
            ingest.end(text);
            await new Promise<void>((resolve, reject) => {
              ingest.on('finish', resolve);
              ingest.on('error', reject);
            });
          }
        }
        await c.query(`insert into ${qpg(schema)}.${MARKER_TABLE} (run_id, chunk_id, rows) values ($1, $2, $3)`, [runId, chunkKey, rows]);
        await c.query('commit');
        return rows;
      } catch (err) {
        await c.query('rollback').catch(() => undefined);
        throw new CdcError(`loading chunk ${chunkKey} into ${pgTable(dst)}: ${(err as Error).message}`, { retriable: true, code: 'SNAPSHOT_LOAD', cause: err });
      } finally {
        await c.end().catch(() => undefined);
      }
    },
    async close() {
      await meta.end().catch(() => undefined);
    },
  };
}

/** Canonical value -> PostgreSQL COPY text field. */
function copyText(col: ColumnSchema, v: Row[string]): string {
  if (v === null) return '\\N';
  let s: string;
  if (col.type.kind === 'bytes' && typeof v === 'string') s = `\\x${Buffer.from(v, 'base64').toString('hex')}`;
  else if (Array.isArray(v)) s = pgArrayLiteral(v);
  else if (typeof v === 'boolean') s = v ? 't' : 'f';
  else s = String(v);
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t');
}

function pgArrayLiteral(v: unknown[]): string {
  return `{${v.map((e) => (e === null ? 'NULL' : Array.isArray(e) ? pgArrayLiteral(e) : `"${String(e).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`)).join(',')}}`;
}

/** Canonical value -> a MySQL parameter. */
function mysqlValue(col: ColumnSchema, v: Row[string]): unknown {
  if (v === null) return null;
  switch (col.type.kind) {
    case 'bytes':
      return Buffer.from(String(v), 'base64');
    case 'bit': {
      const bits = String(v);
      return Buffer.from(BigInt(`0b${bits || '0'}`).toString(16).padStart(Math.ceil(Math.max(bits.length, 1) / 8) * 2, '0'), 'hex');
    }
    case 'timestamp':
      return String(v).replace('T', ' ').replace(/Z$/, '');
    case 'bool':
      return v ? 1 : 0;
    default:
      return Array.isArray(v) ? JSON.stringify(v) : v;
  }
}

export async function mysqlReplicaWriter(url: string): Promise<ReplicaWriter> {
  const open = async () => {
    const c = await mysql.createConnection({ uri: url.replace(/^mariadb:/i, 'mysql:'), supportBigNumbers: true, bigNumberStrings: true, dateStrings: true });
    c.on('error', () => undefined);
    await c.query("set time_zone = '+00:00'");
    return c;
  };
  const meta = await open();
  const prepared = new Set<string>();
  const marker = (db: string) => `${quoteId(db)}.${MARKER_TABLE}`;
  return {
    dialect: 'mysql',
    async finalize() {
      // InnoDB clusters rows by the key: loading with the key in place is the fast way there.
    },
    async prepare(_runId, src, dst) {
      const k = `${dst.db}.${dst.table}`;
      if (prepared.has(k)) return;
      if (src.dialect !== 'mysql') throw new CdcError(`direct snapshot into MySQL needs a MySQL source (use snapshot.target: kafka)`, { retriable: false, code: 'CONFIG' });
      await meta.query(`create database if not exists ${quoteId(dst.db)}`);
      await meta.query(myCreateTable(src, dst));
      await meta.query(`create table if not exists ${marker(dst.db)} (run_id varchar(191) not null, chunk_id varchar(191) not null, \`rows\` bigint not null, done_at timestamp(6) not null default current_timestamp(6), primary key (run_id, chunk_id))`);
      prepared.add(k);
    },
    async truncateOnce(runId, dst) {
      const [r] = await meta.query(`insert ignore into ${marker(dst.db)} (run_id, chunk_id, \`rows\`) values (?, ?, 0)`, [runId, `truncate:${dst.table}`]);
      if ((r as { affectedRows: number }).affectedRows === 1) await meta.query(`delete from ${quoteId(dst.db)}.${quoteId(dst.table)}`);
    },
    async writeChunk(runId, chunkKey, src, dst, chunk, data) {
      if (data.kind !== 'rows') throw new CdcError('a MySQL replica loads canonical rows', { retriable: false });
      const c = await open();
      try {
        await c.query('start transaction');
        // The marker row's lock serialises two workers on the same chunk.
        await c.query(`insert ignore into ${marker(dst.db)} (run_id, chunk_id, \`rows\`) values (?, ?, -1)`, [runId, chunkKey]);
        const [m] = await c.query(`select \`rows\` from ${marker(dst.db)} where run_id = ? and chunk_id = ? for update`, [runId, chunkKey]);
        if (Number((m as { rows: string }[])[0]?.rows ?? -1) >= 0) {
          await c.query('rollback');
          return null;
        }
        const table = `${quoteId(dst.db)}.${quoteId(dst.table)}`;
        if (src.primaryKey.length > 0) {
          const { mysqlKeyRange } = await import('../../connectors/mysql/snapshot.js');
          const { where, values } = mysqlKeyRange(src, chunk);
          await c.query(`delete from ${table} where ${where}`, values);
        }
        const list = await data.rows();
        const cols = src.columns.map((col) => quoteId(col.name)).join(', ');
        // Multi-row INSERTs of up to ~1000 rows: one round trip each, far below max_allowed_packet.
        for (let i = 0; i < list.length; i += 1000) {
          const part = list.slice(i, i + 1000);
          const values = part.map((r) => src.columns.map((col) => mysqlValue(col, r[col.name] ?? null)));
          await c.query(`insert into ${table} (${cols}) values ?`, [values]);
        }
        await c.query(`update ${marker(dst.db)} set \`rows\` = ? where run_id = ? and chunk_id = ?`, [list.length, runId, chunkKey]);
        await c.query('commit');
        return list.length;
      } catch (err) {
        await c.query('rollback').catch(() => undefined);
        throw new CdcError(`loading chunk ${chunkKey} into ${dst.db}.${dst.table}: ${(err as Error).message}`, { retriable: true, code: 'SNAPSHOT_LOAD', cause: err });
      } finally {
        await c.end().catch(() => undefined);
      }
    },
    async close() {
      await meta.end().catch(() => undefined);
    },
  };
}

export function replicaWriter(url: string): Promise<ReplicaWriter> {
  return urlKind(url) === 'postgres' ? pgReplicaWriter(url) : mysqlReplicaWriter(url);
}
