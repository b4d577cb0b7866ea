import mysql from 'mysql2/promise';
import type { ColumnType, ColumnValue, Row } from '../../schemas/column-types.js';
import { CdcError } from '../../schemas/errors.js';
import type { MysqlPosition } from '../../schemas/position.js';
import type { TableId, TableSchema } from '../../schemas/table-schema.js';
import type { Chunk, ChunkSession, KeyTuple, SnapshotReader } from '../snapshot.js';
import { loadTableSchemas, serverInfo, tableKey as catalogTableKey } from './catalog.js';
import { Collations } from './charset.js';

/**
 * Chunked reads of MySQL/MariaDB tables for snapshots and verification. Every value is read as
 * the server's text (or raw bytes for binary columns) and turned into the canonical value of
 * schemas/column-types.ts here, never through a JS Date or float parse of a decimal.
 */

export function quoteId(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

/** Is a value of this type read as raw bytes (no charset)? */
function isBinary(t: ColumnType): boolean {
  return t.kind === 'bytes' || t.kind === 'bit';
}

/** Server text (or bytes) -> canonical value. The session runs with time_zone '+00:00'. */
export function canonicalMysql(t: ColumnType, v: string | Buffer): ColumnValue {
  switch (t.kind) {
    case 'int':
      return t.bits <= 32 ? Number(v) : String(v);
    case 'float': {
      const n = Number(v);
      return Number.isFinite(n) ? n : String(v);
    }
    case 'year':
      return Number(v);
    case 'bytes':
      return (v as Buffer).toString('base64');
    case 'bit': {
      const b = v as Buffer;
      let bits = '';
      for (const byte of b) bits += byte.toString(2).padStart(8, '0');
      return bits.slice(-t.length).padStart(t.length, '0');
    }
    case 'timestamp': {
      const s = String(v);
      if (s.startsWith('0000-00-00')) return s.replace(' ', 'T');
      return `${s.replace(' ', 'T')}${t.tz ? 'Z' : ''}`;
    }
    case 'uuid':
      return String(v).toLowerCase();
    default:
      return String(v);
  }
}

/** Canonical value -> what MySQL compares with the column (key bounds). */
export function mysqlParam(t: ColumnType, v: ColumnValue): unknown {
  if (v === null) return null;
  if (t.kind === 'timestamp' && typeof v === 'string') return v.replace('T', ' ').replace(/Z$/, '');
  if (t.kind === 'bytes' && typeof v === 'string') return Buffer.from(v, 'base64');
  return v;
}

/** Key kinds that can bound a range query. */
const RANGE_KEY_KINDS = new Set<ColumnType['kind']>(['int', 'decimal', 'string', 'uuid', 'date', 'timestamp', 'bytes', 'year', 'enum', 'time']);

export function rangeableMysqlKey(schema: TableSchema): boolean {
  return schema.primaryKey.length > 0 && schema.primaryKey.every((k) => RANGE_KEY_KINDS.has(schema.columns.find((c) => c.name === k)?.type.kind ?? 'unknown'));
}

function keyExpr(schema: TableSchema, name: string, byteOrder: boolean): string {
  const c = schema.columns.find((x) => x.name === name)!;
  // Byte order for text keys, so ranges agree with PostgreSQL's COLLATE "C" in cross-dialect verification.
  return byteOrder && c.type.kind === 'string' ? `cast(${quoteId(name)} as binary)` : quoteId(name);
}

export function mysqlKeyRange(schema: TableSchema, chunk: Pick<Chunk, 'lo' | 'hi'>, byteOrder = false): { where: string; values: unknown[] } {
  const conds: string[] = [];
  const values: unknown[] = [];
  const cols = schema.primaryKey;
  const lhs = `(${cols.map((k) => keyExpr(schema, k, byteOrder)).join(', ')})`;
  const tuple = (t: KeyTuple, op: string) => {
    const ps = cols.map((k, i) => {
      const c = schema.columns.find((x) => x.name === k)!;
      values.push(mysqlParam(c.type, t[i] ?? null));
      return byteOrder && c.type.kind === 'string' ? 'cast(? as binary)' : '?';
    });
    conds.push(`${lhs} ${op} (${ps.join(', ')})`);
  };
  if (chunk.lo) tuple(chunk.lo, '>=');
  if (chunk.hi) tuple(chunk.hi, '<');
  return { where: conds.length > 0 ? conds.join(' and ') : '1=1', values };
}

function orderBy(schema: TableSchema, byteOrder: boolean): string {
  return schema.primaryKey.length === 0 ? '' : ` order by ${schema.primaryKey.map((k) => keyExpr(schema, k, byteOrder)).join(', ')}`;
}

function tableRef(id: TableId): string {
  return `${quoteId(id.db)}.${quoteId(id.table)}`;
}

export function mysqlChunkSelect(schema: TableSchema, chunk: Chunk, byteOrder = false): { text: string; values: unknown[] } {
  const { where, values } = mysqlKeyRange(schema, chunk, byteOrder);
  return { text: `select ${schema.columns.map((c) => quoteId(c.name)).join(', ')} from ${tableRef(schema.id)} where ${where}${orderBy(schema, byteOrder)}`, values };
}

/** Values as server text, binary columns as Buffers: nothing is parsed by the driver. */
const rawTypeCast = (field: { type: string; charset?: number; string(): string | null; buffer(): Buffer | null }, next: () => unknown): unknown => {
  void next;
  // charset 63 = binary: BLOB/BINARY/BIT columns; read the bytes as they are.
  if (field.charset === 63 || field.type === 'BIT') return field.buffer();
  return field.string();
};

export async function openMysql(url: string): Promise<mysql.Connection> {
  try {
    const conn = await mysql.createConnection({
      uri: url.replace(/^mariadb:/i, 'mysql:'),
      typeCast: rawTypeCast as never,
      supportBigNumbers: true,
      bigNumberStrings: true,
      dateStrings: true,
      multipleStatements: false,
      connectTimeout: 10_000,
    });
    conn.on('error', () => undefined);
    await conn.query("set time_zone = '+00:00'");
    return conn;
  } catch (err) {
    throw new CdcError(`connecting to ${url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@')}: ${(err as Error).message}`, { retriable: true, code: 'MYSQL_CONNECT', cause: err });
  }
}

/**
 * The table's schema exactly as the stream describes it (the connector's own catalog reader:
 * same types, charsets, defaults, JSON detection), so snapshot rows and streamed rows carry the
 * same TableSchema and sinks see no phantom schema change at the hand-off.
 */
export async function describeMysqlTable(conn: mysql.Connection, id: TableId): Promise<TableSchema> {
  const info = await serverInfo(conn);
  const defs = await loadTableSchemas(conn, info.flavor, [{ db: id.db, schema: null, table: id.table }], new Collations());
  const def = defs.get(catalogTableKey(id.db, id.table));
  if (!def) throw new CdcError(`table ${id.db}.${id.table} does not exist`, { retriable: false, code: 'NO_TABLE' });
  return def.schema;
}

export function decodeMysqlRows(schema: TableSchema, rows: Record<string, string | Buffer | null>[]): Row[] {
  return rows.map((r) => {
    const out: Row = {};
    for (const c of schema.columns) {
      const v = r[c.name];
      out[c.name] = v === null || v === undefined ? null : canonicalMysql(c.type, isBinary(c.type) ? v : typeof v === 'string' ? v : (v as Buffer).toString('utf8'));
    }
    return out;
  });
}

export async function estimateMysqlRows(conn: mysql.Connection, id: TableId): Promise<number> {
  const [rows] = await conn.query(`select table_rows as n, data_length as b from information_schema.tables where table_schema = ? and table_name = ?`, [id.db, id.table]);
  const r = (rows as { n: string | null; b: string | null }[])[0];
  const n = Number(r?.n ?? 0);
  // InnoDB's table_rows is a sample estimate; small tables are counted exactly.
  if (n < 100_000) {
    const [c] = await conn.query(`select count(*) as n from ${tableRef(id)}`);
    return Number((c as { n: string }[])[0]?.n ?? 0);
  }
  return n;
}

/** Key boundaries every `chunkRows` keys, one pass over the primary key. */
export async function planMysqlKeyChunks(conn: mysql.Connection, schema: TableSchema, chunkRows: number, estRows: number, byteOrder = false): Promise<Chunk[]> {
  const keySchema: TableSchema = { ...schema, columns: schema.primaryKey.map((k) => schema.columns.find((c) => c.name === k)!) };
  const bounds: KeyTuple[] = [];
  let lo: KeyTuple | null = null;
  for (;;) {
    const { where, values } = mysqlKeyRange(schema, { lo, hi: null }, byteOrder);
    const [rows] = await conn.query(
      `select ${schema.primaryKey.map(quoteId).join(', ')} from ${tableRef(schema.id)} where ${where}${orderBy(schema, byteOrder)} limit 1 offset ${chunkRows}`,
      values,
    );
    const r = (rows as Record<string, string | Buffer | null>[])[0];
    if (!r) break;
    const key = decodeMysqlRows(keySchema, [r])[0]!;
    lo = schema.primaryKey.map((k) => key[k] ?? null);
    bounds.push(lo);
  }
  const n = bounds.length + 1;
  const per = Math.max(1, Math.round(estRows / n));
  return Array.from({ length: n }, (_, i) => ({ index: i, lo: i === 0 ? null : bounds[i - 1]!, hi: i === n - 1 ? null : bounds[i]!, estRows: per }));
}

/**
 * Starts a consistent read and returns the binlog position it corresponds to. MariaDB reports
 * that position for the transaction itself (`binlog_snapshot_file/position`, no lock); MySQL
 * needs FLUSH TABLES WITH READ LOCK around the start and the position read (Debezium's way).
 */
export async function startConsistentRead(conn: mysql.Connection): Promise<MysqlPosition> {
  const [ver] = await conn.query('select version() as v');
  const mariadb = /mariadb/i.test(String((ver as { v: string }[])[0]?.v ?? ''));
  await conn.query('set session transaction isolation level repeatable read');
  if (mariadb) {
    await conn.query('start transaction with consistent snapshot, read only');
    const [st] = await conn.query("show status like 'binlog_snapshot_%'");
    const m = new Map((st as { Variable_name: string; Value: string }[]).map((r) => [r.Variable_name.toLowerCase(), String(r.Value)]));
    const file = m.get('binlog_snapshot_file') ?? '';
    const pos = Number(m.get('binlog_snapshot_position') ?? 0);
    if (!file) throw new CdcError('the source has no binary log (set log_bin)', { retriable: false, code: 'CONFIG' });
    const [g] = await conn.query('select binlog_gtid_pos(?, ?) as g', [file, pos]);
    const gtid = (g as { g: string | null }[])[0]?.g ?? '';
    return { kind: 'mysql', file, pos, ...(gtid ? { gtidSet: gtid } : {}) };
  }
  await conn.query('flush tables with read lock');
  try {
    await conn.query('start transaction with consistent snapshot, read only');
    const [st] = await conn.query('show master status');
    const r = (st as Record<string, string>[])[0];
    if (!r) throw new CdcError('the source has no binary log (set log_bin)', { retriable: false, code: 'CONFIG' });
    return { kind: 'mysql', file: String(r.File), pos: Number(r.Position), ...(r.Executed_Gtid_Set ? { gtidSet: String(r.Executed_Gtid_Set).replace(/\s+/g, '') } : {}) };
  } finally {
    await conn.query('unlock tables');
  }
}

export interface MysqlSnapshotReaderOptions {
  url: string;
  /** Databases (and tables) to read: `db.table` patterns with `*`, as in the source config. */
  include?: string[];
  exclude?: string[];
  byteOrder?: boolean;
}

function compileFilter(include: string[] | undefined, exclude: string[]): (db: string, table: string) => boolean {
  const re = (p: string) => {
    const [d, t] = p.includes('.') ? [p.slice(0, p.indexOf('.')), p.slice(p.indexOf('.') + 1)] : [p, '*'];
    const part = (s: string) => s.split('*').map((x) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*');
    return new RegExp(`^${part(d!)}\\u0000${part(t!)}$`);
  };
  const inc = include?.map(re);
  const exc = exclude.map(re);
  return (db, table) => {
    const n = `${db}\u0000${table}`;
    if (inc && !inc.some((r) => r.test(n))) return false;
    return !exc.some((r) => r.test(n));
  };
}

export async function mysqlSnapshotReader(o: MysqlSnapshotReaderOptions): Promise<SnapshotReader & { conn: mysql.Connection; sessionAt(): Promise<{ session: ChunkSession; position: MysqlPosition }> }> {
  const conn = await openMysql(o.url);
  const byteOrder = o.byteOrder ?? false;
  const urlDb = decodeURIComponent(new URL(o.url.replace(/^mariadb:/i, 'mysql:')).pathname.replace(/^\//, ''));
  const filter = compileFilter(o.include ?? (urlDb ? [`${urlDb}.*`] : undefined), o.exclude ?? []);
  const schemas = new Map<string, TableSchema>();
  // The catalog connection is shared by concurrent chunk jobs: one call at a time.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = queue.then(fn, fn);
    queue = p.catch(() => undefined);
    return p;
  };

  const makeSession = async (consistent: boolean): Promise<{ session: ChunkSession; position: MysqlPosition | null }> => {
    const c = await openMysql(o.url);
    let position: MysqlPosition | null = null;
    if (consistent) position = await startConsistentRead(c);
    else await c.query('start transaction read only');
    let closed = false;
    return {
      position,
      session: {
        async readChunk(schema, chunk) {
          const q = mysqlChunkSelect(schema, chunk, byteOrder);
          const [rows] = await c.query(q.text, q.values);
          return decodeMysqlRows(schema, rows as Record<string, string | Buffer | null>[]);
        },
        async close() {
          if (closed) return;
          closed = true;
          await c.query('commit').catch(() => undefined);
          await c.end().catch(() => undefined);
        },
      },
    };
  };

  return {
    dialect: 'mysql',
    conn,
    async listTables() {
      const [rows] = await serial(() => conn.query(
        `select table_schema as db, table_name as t from information_schema.tables
          where table_type = 'BASE TABLE' and table_schema not in ('mysql', 'information_schema', 'performance_schema', 'sys') order by 1, 2`,
      ));
      return (rows as { db: string; t: string }[]).filter((r) => filter(String(r.db), String(r.t))).map((r) => ({ db: String(r.db), schema: null, table: String(r.t) }));
    },
    async describe(id) {
      const k = `${id.db}.${id.table}`;
      let s = schemas.get(k);
      if (!s) schemas.set(k, (s = await serial(() => describeMysqlTable(conn, id))));
      return s;
    },
    estimateRows: (id) => serial(() => estimateMysqlRows(conn, id)),
    planChunks: (schema, chunkRows) =>
      serial(async () => {
        const est = await estimateMysqlRows(conn, schema.id);
        if (!rangeableMysqlKey(schema)) return [{ index: 0, lo: null, hi: null, estRows: est }];
        return planMysqlKeyChunks(conn, schema, chunkRows, est, byteOrder);
      }),
    async session() {
      return (await makeSession(false)).session;
    },
    async sessionAt() {
      const s = await makeSession(true);
      return { session: s.session, position: s.position! };
    },
    async close() {
      await conn.end().catch(() => undefined);
    },
  };
}
