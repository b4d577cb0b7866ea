import mysql from 'mysql2/promise';
import pg from 'pg';
import { type SinkConfig, sinkConfig } from '../../config/schema.js';
import type { ChangeEvent, Op } from '../../schemas/change-event.js';
import type { Row } from '../../schemas/column-types.js';
import type { PgPosition, MysqlPosition } from '../../schemas/position.js';
import type { TableSchema } from '../../schemas/table-schema.js';
import { createSink } from '../../sinks/index.js';
import type { ApplyHooks, DeadLetter, OffsetAdvance, Sink, SinkChange } from '../../sinks/sink.js';
import { createLogger } from '../../util/log.js';
import { env, uniq } from '../helpers.js';

/** A replica database created for one test, dropped by `drop()`. */
export interface Replica {
  kind: 'postgres' | 'mysql';
  /** Sink URL (PostgreSQL: the test's own database). */
  url: string;
  /** Schema (PostgreSQL) / database (MySQL) names the test's tables map to. */
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** Every row of a replica table as text (binary as hex), ordered by the given columns. */
  rows(schema: string, table: string, orderBy: string[], opts?: { withVersions?: boolean }): Promise<Record<string, string | null>[]>;
  /** Databases (MySQL) to drop besides the test database. */
  track(db: string): void;
  drop(): Promise<void>;
}

const pgQ = (s: string) => `"${s.replace(/"/g, '""')}"`;
const myQ = (s: string) => `\`${s.replace(/`/g, '``')}\``;

export async function pgReplica(base = env.pgReplica): Promise<Replica> {
  const dbName = uniq('sinkdb');
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${pgQ(dbName)}`);
  await admin.end();
  const url = base.replace(/\/[^/]*$/, `/${dbName}`);
  // A pool: fault tests kill the server under it, later queries reconnect.
  const client = new pg.Pool({ connectionString: url, max: 2, options: '-c TimeZone=UTC' });
  client.on('error', () => undefined);
  return {
    kind: 'postgres',
    url,
    async query(sql, params) {
      return (await client.query(sql, params as unknown[])).rows as Record<string, unknown>[];
    },
    async rows(schema, table, orderBy, opts) {
      const cols = (
        await client.query(
          `SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
          [`${pgQ(schema)}.${pgQ(table)}`],
        )
      ).rows as { attname: string; type: string }[];
      const wanted = cols.filter((c) => opts?.withVersions || !c.attname.startsWith('_cdc_'));
      if (wanted.length === 0) return [];
      const sel = wanted.map((c) => (c.type === 'bytea' ? `encode(${pgQ(c.attname)}, 'hex')` : `${pgQ(c.attname)}::text`) + ` AS ${pgQ(c.attname)}`).join(', ');
      const r = await client.query(`SELECT ${sel} FROM ${pgQ(schema)}.${pgQ(table)} AS t ORDER BY ${orderBy.map((c) => `t.${pgQ(c)}`).join(', ')}`);
      return r.rows as Record<string, string | null>[];
    },
    track() {},
    async drop() {
      await client.end();
      const a = new pg.Client({ connectionString: base });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${pgQ(dbName)} WITH (FORCE)`);
      await a.end();
    },
  };
}

export async function mariaReplica(base = env.mariaReplica): Promise<Replica> {
  // A pool: fault tests kill the server under it, later queries reconnect.
  const conn = mysql.createPool({ uri: base, connectionLimit: 2, supportBigNumbers: true, bigNumberStrings: true, dateStrings: true, timezone: 'Z' });
  conn.on('connection', (c) => {
    (c as unknown as { on(e: string, f: () => void): void }).on('error', () => undefined);
    c.query(`SET time_zone = '+00:00'`);
  });
  const dbs = new Set<string>();
  return {
    kind: 'mysql',
    url: base,
    async query(sql, params) {
      const [rows] = await conn.query(sql, params);
      return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [];
    },
    async rows(schema, table, orderBy, opts) {
      const [cols] = await conn.query(`SELECT COLUMN_NAME AS n, DATA_TYPE AS t FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, [schema, table]);
      const wanted = (cols as { n: string; t: string }[]).filter((c) => opts?.withVersions || !c.n.startsWith('_cdc_'));
      if (wanted.length === 0) return [];
      const sel = wanted
        .map((c) => {
          const ref = myQ(c.n);
          if (/binary|blob/.test(c.t)) return `LOWER(HEX(${ref})) AS ${ref}`;
          if (c.t === 'bit') return `BIN(${ref} + 0) AS ${ref}`;
          return `CAST(${ref} AS CHAR) AS ${ref}`;
        })
        .join(', ');
      const [rows] = await conn.query(`SELECT ${sel} FROM ${myQ(schema)}.${myQ(table)} AS t ORDER BY ${orderBy.map((c) => `t.${myQ(c)}`).join(', ')}`);
      return rows as Record<string, string | null>[];
    },
    track(db) {
      dbs.add(db);
    },
    async drop() {
      for (const db of dbs) await conn.query(`DROP DATABASE IF EXISTS ${myQ(db)}`);
      await conn.end();
    },
  };
}

export function replicaOf(kind: 'postgres' | 'mysql'): Promise<Replica> {
  return kind === 'postgres' ? pgReplica() : mariaReplica();
}

/** A parsed `sinks[]` entry with test defaults. */
export function sinkCfg(url: string, over: Record<string, unknown> = {}): SinkConfig {
  return sinkConfig.parse({ name: uniq('sink'), url, ...over });
}

export function openSink(cfg: SinkConfig, statementRows?: number): Sink {
  return createSink(cfg, { log: createLogger(process.env.CDC_LOG_LEVEL ?? 'error'), statementRows });
}

/** Collects dead letters handed to the hook. */
export function collectingHooks(): ApplyHooks & { dead: DeadLetter[] } {
  const dead: DeadLetter[] = [];
  return {
    dead,
    async deadLetter(items) {
      dead.push(...items);
    },
  };
}

/** Builds change events of one table the way the connectors do. */
export class EventFactory {
  private seq = 0;
  private lsn = 0x1000;
  private offset = 0;
  constructor(
    public schema: TableSchema,
    private readonly o: { source?: string; origin?: string; topic?: string } = {},
  ) {}

  private position(): PgPosition | MysqlPosition {
    this.lsn += 0x10;
    return this.schema.dialect === 'postgres'
      ? { kind: 'pg', lsn: `0/${this.lsn.toString(16).toUpperCase()}`, commitLsn: `0/${(this.lsn + 8).toString(16).toUpperCase()}`, seq: this.seq++ }
      : { kind: 'mysql', file: 'binlog.000001', pos: this.lsn, seq: this.seq++ };
  }

  /** One change; `tsUs` defaults to a clock that moves 1 ms per event. */
  event(op: Op, before: Row | null, after: Row | null, opts: { tsUs?: bigint; origin?: string; txId?: string; schema?: TableSchema } = {}): ChangeEvent {
    const schema = opts.schema ?? this.schema;
    const tsUs = opts.tsUs ?? 1_700_000_000_000_000n + BigInt(this.seq) * 1000n;
    const pos = this.position();
    const source = {
      version: 'test',
      connector: schema.dialect === 'postgres' ? ('postgresql' as const) : ('mysql' as const),
      name: this.o.source ?? 'src',
      ts_ms: Number(tsUs / 1000n),
      ...(schema.dialect === 'postgres' ? { ts_us: Number(tsUs) } : {}),
      snapshot: 'false' as const,
      db: schema.id.db,
      schema: schema.id.schema,
      table: schema.id.table,
      txId: opts.txId ?? String(this.seq),
      origin: opts.origin ?? this.o.origin ?? 'src',
    };
    return { op, before, after, source, ts_ms: Date.now(), transaction: null, schema, position: pos };
  }

  change(e: ChangeEvent, partition = 0): SinkChange {
    return { event: e, ref: { topic: this.o.topic ?? 'test.topic', partition, offset: String(this.offset++) } };
  }

  c(after: Row, o?: Parameters<EventFactory['event']>[3]) {
    return this.change(this.event('c', null, after, o));
  }
  u(before: Row | null, after: Row, o?: Parameters<EventFactory['event']>[3]) {
    return this.change(this.event('u', before, after, o));
  }
  d(before: Row, o?: Parameters<EventFactory['event']>[3]) {
    return this.change(this.event('d', before, null, o));
  }
  t(o?: Parameters<EventFactory['event']>[3]) {
    return this.change(this.event('t', null, null, o));
  }
}

/** Applies changes as one batch with no offsets. */
export async function applyAll(sink: Sink, changes: SinkChange[], offsets: OffsetAdvance[] = []) {
  const hooks = collectingHooks();
  const result = await sink.apply({ changes, offsets }, hooks);
  return { ...result, dead: hooks.dead };
}
