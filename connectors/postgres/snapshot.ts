import type pg from 'pg';
import type { ColumnType, Row } from '../../schemas/column-types.js';
import { CdcError } from '../../schemas/errors.js';
import type { TableId, TableSchema } from '../../schemas/table-schema.js';
import type { Chunk, ChunkSession, KeyTuple, SnapshotReader } from '../snapshot.js';
import { TypeCache, formatTypes, openSql, qualified, quoteIdent, relationFacts, sql } from './catalog.js';
import { listTables } from './setup.js';
import { type TableFilter, compileTableFilter } from './tables.js';
import { type ColumnCodec, columnCodec } from './type-map.js';

/**
 * Chunked reads of PostgreSQL tables for snapshots and verification. Values are read as text in
 * the walsender's session settings (catalog.ts `openSql`) and decoded by the same codecs as the
 * stream, so a snapshot row and a streamed row of the same data are equal.
 */

export interface PgTableInfo {
  schema: TableSchema;
  codecs: ColumnCodec[];
}

/** Key kinds whose canonical value PostgreSQL reads back as the same value when passed as text. */
const RANGE_KEY_KINDS = new Set<ColumnType['kind']>(['int', 'decimal', 'string', 'uuid', 'date', 'timestamp', 'bool', 'enum', 'bytes', 'time']);

function param(t: ColumnType, n: number): string {
  return t.kind === 'bytes' ? `decode($${n}, 'base64')` : `$${n}`;
}

/**
 * Range predicate on the key columns: `(k1, k2) >= ($1, $2) and (k1, k2) < ($3, $4)`, a row
 * comparison the key index serves. `byteOrder` compares text keys in byte order (`COLLATE "C"`),
 * so the ranges match MySQL's binary order in cross-dialect verification.
 */
export function keyRangeSql(schema: TableSchema, chunk: Pick<Chunk, 'lo' | 'hi' | 'ctid'>, firstParam = 1, byteOrder = false): { where: string; values: unknown[] } {
  const conds: string[] = [];
  const values: unknown[] = [];
  if (chunk.ctid) {
    conds.push(`ctid >= '(${chunk.ctid.from},0)'::tid`);
    if (chunk.ctid.to !== null) conds.push(`ctid < '(${chunk.ctid.to},0)'::tid`);
  } else {
    const cols = schema.primaryKey.map((k) => schema.columns.find((c) => c.name === k)!);
    const col = (c: (typeof cols)[number]) => (byteOrder && (c.type.kind === 'string' || c.type.kind === 'enum') ? `${quoteIdent(c.name)}::text collate "C"` : quoteIdent(c.name));
    const lhs = `(${cols.map(col).join(', ')})`;
    const tuple = (t: KeyTuple, op: string) => {
      const ps = cols.map((c, i) => {
        values.push(t[i]);
        const p = param(c.type, firstParam + values.length - 1);
        return byteOrder && (c.type.kind === 'string' || c.type.kind === 'enum') ? `${p}::text collate "C"` : p;
      });
      conds.push(`${lhs} ${op} (${ps.join(', ')})`);
    };
    if (chunk.lo) tuple(chunk.lo, '>=');
    if (chunk.hi) tuple(chunk.hi, '<');
  }
  return { where: conds.length > 0 ? conds.join(' and ') : 'true', values };
}

export function orderBySql(schema: TableSchema, byteOrder = false): string {
  if (schema.primaryKey.length === 0) return '';
  const cols = schema.primaryKey.map((k) => {
    const c = schema.columns.find((x) => x.name === k)!;
    return byteOrder && (c.type.kind === 'string' || c.type.kind === 'enum') ? `${quoteIdent(k)}::text collate "C"` : quoteIdent(k);
  });
  return ` order by ${cols.join(', ')}`;
}

/** `select <cols> from <table> where <chunk range> order by <key>`. */
export function chunkSelectSql(schema: TableSchema, chunk: Chunk, byteOrder = false): { text: string; values: unknown[] } {
  const { where, values } = keyRangeSql(schema, chunk, 1, byteOrder);
  const cols = schema.columns.map((c) => quoteIdent(c.name)).join(', ');
  return { text: `select ${cols} from ${qualified(schema.id.schema ?? 'public', schema.id.table)} where ${where}${orderBySql(schema, byteOrder)}`, values };
}

/**
 * `COPY (select ...) TO STDOUT` of one chunk, for the bulk path into a PostgreSQL replica. COPY
 * cannot take parameters, so key bounds are inlined as quoted literals.
 */
export function chunkCopyOutSql(schema: TableSchema, chunk: Chunk, format: 'text' | 'binary' = 'text'): string {
  // No ORDER BY: the replica does not need the rows sorted, and a sort or index walk costs time.
  const { where, values } = keyRangeSql(schema, chunk);
  const text = `select ${schema.columns.map((c) => quoteIdent(c.name)).join(', ')} from ${qualified(schema.id.schema ?? 'public', schema.id.table)} where ${where}`;
  const inlined = text.replace(/\$(\d+)/g, (_m, n: string) => {
    const v = values[Number(n) - 1];
    return v === null || v === undefined ? 'null' : `'${String(v).replace(/'/g, "''")}'`;
  });
  return `copy (${inlined}) to stdout${format === 'binary' ? ' (format binary)' : ''}`;
}

/** Reads one table's shape the way the stream describes it (relations.ts), from the catalog. */
export async function describePgTable(client: pg.Client, types: TypeCache, db: string, id: TableId): Promise<PgTableInfo> {
  const schemaName = id.schema ?? 'public';
  const rel = await sql(client, `select to_regclass($1)::oid::int8::text as oid`, [qualified(schemaName, id.table)], 'looking up table');
  const relid = rel[0]?.oid;
  if (!relid) throw new CdcError(`table ${schemaName}.${id.table} does not exist in database ${db}`, { retriable: false, code: 'NO_TABLE' });
  const attrs = await sql(
    client,
    `select attname, atttypid::int8::text as typ, atttypmod::text as typmod from pg_attribute
      where attrelid = $1::oid and attnum > 0 and not attisdropped order by attnum`,
    [relid],
    'reading table columns',
  );
  const cols = attrs.map((a) => ({ name: a.attname ?? '', typeOid: Number(a.typ), typmod: Number(a.typmod) }));
  await types.ensure(client, cols.map((c) => c.typeOid));
  // One query at a time: the client may be shared (pg deprecates queued concurrent queries).
  const facts = await relationFacts(client, Number(relid));
  const sourceTypes = await formatTypes(client, cols);
  const codecs = cols.map((c) => columnCodec(c.typeOid, c.typmod, (oid) => types.get(oid)));
  // The primary key, else REPLICA IDENTITY USING INDEX (the stream keys rows by that index). The
  // key order comes from unnest ... with ordinality: int2vector subscripts start at 0, so
  // array_position() on it is off by one.
  const keyRows = await sql(
    client,
    `select a.attname, i.indisprimary::text as pk from pg_index i cross join lateral unnest(i.indkey) with ordinality as k(attnum, ord)
       join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
      where i.indrelid = $1::oid and (i.indisprimary or i.indisreplident) order by i.indisprimary desc, k.ord`,
    [relid],
    'reading the table key',
  );
  const pkCols = keyRows.filter((r) => r.pk === 'true').map((r) => r.attname ?? '');
  const primaryKey = pkCols.length > 0 ? pkCols : keyRows.map((r) => r.attname ?? '');
  return {
    schema: {
      id: { db, schema: schemaName, table: id.table },
      columns: cols.map((c, i) => ({
        name: c.name,
        type: codecs[i]!.type,
        nullable: !facts.notNull.has(c.name),
        sourceType: sourceTypes[i] ?? 'unknown',
        defaultExpr: facts.defaults.get(c.name) ?? null,
      })),
      primaryKey,
      dialect: 'postgres',
    },
    codecs,
  };
}

export function decodePgRows(info: PgTableInfo, rows: Record<string, string | null>[]): Row[] {
  const { schema, codecs } = info;
  return rows.map((r) => {
    const out: Row = {};
    schema.columns.forEach((c, i) => {
      const v = r[c.name];
      if (v === null || v === undefined) out[c.name] = null;
      else {
        try {
          out[c.name] = codecs[i]!.decode(v);
        } catch (err) {
          throw new CdcError(`${schema.id.schema}.${schema.id.table}.${c.name}: ${(err as Error).message}`, { retriable: false, code: 'VALUE' });
        }
      }
    });
    return out;
  });
}

/** True when every key column can bound a range (else the table is read as one chunk or by CTID). */
export function rangeableKey(schema: TableSchema): boolean {
  return (
    schema.primaryKey.length > 0 &&
    schema.primaryKey.every((k) => {
      const c = schema.columns.find((x) => x.name === k);
      return c !== undefined && RANGE_KEY_KINDS.has(c.type.kind);
    })
  );
}

/**
 * Key boundaries every `chunkRows` keys, one index pass: each query skips `chunkRows` index
 * entries from the previous boundary (`offset` on an index-only scan).
 */
export async function planKeyChunks(client: pg.Client, info: PgTableInfo, chunkRows: number, estRows: number, byteOrder = false): Promise<Chunk[]> {
  const { schema } = info;
  const keyCols = schema.primaryKey;
  const keyInfo: PgTableInfo = {
    schema: { ...schema, columns: keyCols.map((k) => schema.columns.find((c) => c.name === k)!) },
    codecs: keyCols.map((k) => info.codecs[schema.columns.findIndex((c) => c.name === k)]!),
  };
  const table = qualified(schema.id.schema ?? 'public', schema.id.table);
  const sel = keyCols.map(quoteIdent).join(', ');
  const bounds: KeyTuple[] = [];
  let lo: KeyTuple | null = null;
  for (;;) {
    const { where, values } = keyRangeSql(schema, { lo, hi: null }, 1, byteOrder);
    const rows = await sql(client, `select ${sel} from ${table} where ${where}${orderBySql(schema, byteOrder)} limit 1 offset ${chunkRows}`, values, 'planning chunks');
    if (rows.length === 0) break;
    const key = decodePgRows(keyInfo, rows)[0]!;
    const tuple = keyCols.map((k) => key[k] ?? null);
    bounds.push(tuple);
    lo = tuple;
  }
  const n = bounds.length + 1;
  const per = Math.max(1, Math.round(estRows / n));
  return Array.from({ length: n }, (_, i) => ({ index: i, lo: i === 0 ? null : bounds[i - 1]!, hi: i === n - 1 ? null : bounds[i]!, estRows: per }));
}

/** Heap page ranges of about `chunkRows` rows each; the last one is open-ended. */
export async function planCtidChunks(client: pg.Client, schema: TableSchema, chunkRows: number): Promise<Chunk[]> {
  const r = await sql(
    client,
    `select greatest(c.reltuples, 0)::int8::text as tuples, (pg_relation_size(c.oid) / current_setting('block_size')::int)::text as pages
       from pg_class c where c.oid = to_regclass($1)`,
    [qualified(schema.id.schema ?? 'public', schema.id.table)],
  );
  const pages = Number(r[0]?.pages ?? 0);
  const tuples = Number(r[0]?.tuples ?? 0);
  const perPage = pages > 0 && tuples > 0 ? tuples / pages : 50;
  const step = Math.max(1, Math.floor(chunkRows / perPage));
  const chunks: Chunk[] = [];
  for (let from = 0, i = 0; ; from += step, i++) {
    const last = from + step >= pages;
    chunks.push({ index: i, lo: null, hi: null, ctid: { from, to: last ? null : from + step }, estRows: Math.round(Math.min(step, Math.max(pages - from, 0)) * perPage) });
    if (last) break;
  }
  return chunks;
}

export async function estimatePgRows(client: pg.Client, id: TableId): Promise<number> {
  const r = await sql(client, `select greatest(reltuples, 0)::int8::text as n, relpages::text as p from pg_class where oid = to_regclass($1)`, [qualified(id.schema ?? 'public', id.table)]);
  const n = Number(r[0]?.n ?? 0);
  if (n > 0) return n;
  // Never analysed (reltuples -1 / 0): count, which is cheap exactly when the table is small.
  if (Number(r[0]?.p ?? 0) < 1000) {
    const c = await sql(client, `select count(*)::text as n from ${qualified(id.schema ?? 'public', id.table)}`);
    return Number(c[0]?.n ?? 0);
  }
  return 0;
}

/** Opens `begin isolation level repeatable read read only` on the client, importing a snapshot when given. */
export async function beginSnapshot(client: pg.Client, snapshotName: string | null | undefined): Promise<void> {
  await sql(client, 'begin isolation level repeatable read read only', [], 'starting snapshot transaction');
  if (snapshotName) {
    // An exported snapshot lives only as long as the transaction or connection that exported it.
    await sql(client, `set transaction snapshot '${snapshotName.replace(/'/g, "''")}'`, [], 'importing snapshot').catch((err: unknown) => {
      throw new CdcError(`snapshot ${snapshotName} is gone (its exporting session ended): ${(err as Error).message}`, { retriable: false, code: 'SNAPSHOT_GONE', cause: err });
    });
  }
}

export interface PgSnapshotReaderOptions {
  url: string;
  /** include/exclude patterns (`schema.table`), as in the source config. */
  include?: string[];
  exclude?: string[];
  /** Compare text keys in byte order (cross-dialect verification). @defaultValue false */
  byteOrder?: boolean;
  applicationName?: string;
}

export async function pgSnapshotReader(o: PgSnapshotReaderOptions): Promise<SnapshotReader & { info(id: TableId): Promise<PgTableInfo>; client: pg.Client }> {
  const app = o.applicationName ?? 'cdc-snapshot';
  const client = await openSql(o.url, app);
  const types = new TypeCache();
  const db = (await sql(client, 'select current_database() as db'))[0]?.db ?? '';
  const filter: TableFilter = compileTableFilter(o.include, o.exclude ?? []);
  const infos = new Map<string, PgTableInfo>();
  const byteOrder = o.byteOrder ?? false;

  // The catalog client is shared by concurrent chunk jobs: run its work one call at a time.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = queue.then(fn, fn);
    queue = p.catch(() => undefined);
    return p;
  };
  const describing = new Map<string, Promise<PgTableInfo>>();
  const info = (id: TableId): Promise<PgTableInfo> => {
    const k = `${id.schema}.${id.table}`;
    const known = infos.get(k);
    if (known) return Promise.resolve(known);
    let p = describing.get(k);
    if (!p) {
      p = serial(() => describePgTable(client, types, db, id)).then((i) => {
        infos.set(k, i);
        return i;
      });
      p.finally(() => describing.delete(k)).catch(() => undefined);
      describing.set(k, p);
    }
    return p;
  };
  const infoOf = (schema: TableSchema): PgTableInfo => {
    const i = infos.get(`${schema.id.schema}.${schema.id.table}`);
    if (i) return i;
    // A schema described elsewhere (same shape): rebuild its codecs from its types is not possible
    // without OIDs, so callers describe first.
    throw new CdcError(`table ${schema.id.schema}.${schema.id.table} was not described by this reader`, { retriable: false });
  };

  return {
    dialect: 'postgres',
    client,
    info,
    async listTables() {
      return (await serial(() => listTables(client))).filter((t) => filter(t.schema, t.table)).map((t) => ({ db, schema: t.schema, table: t.table }));
    },
    async describe(id) {
      return (await info(id)).schema;
    },
    estimateRows: (id) => serial(() => estimatePgRows(client, id)),
    async planChunks(schema, chunkRows, opts) {
      await info(schema.id);
      return serial(async () => {
        const est = await estimatePgRows(client, schema.id);
        if (opts?.ctid || !rangeableKey(schema)) {
          if (schema.primaryKey.length > 0 && !opts?.ctid) return [{ index: 0, lo: null, hi: null, estRows: est }];
          return planCtidChunks(client, schema, chunkRows);
        }
        return planKeyChunks(client, infoOf(schema), chunkRows, est, byteOrder);
      });
    },
    async session(snapshotName) {
      const c = await openSql(o.url, app);
      try {
        await beginSnapshot(c, snapshotName);
      } catch (err) {
        await c.end().catch(() => undefined);
        throw err;
      }
      let closed = false;
      const s: ChunkSession = {
        async readChunk(schema, chunk) {
          const i = await (async () => {
            const k = `${schema.id.schema}.${schema.id.table}`;
            return infos.get(k) ?? info(schema.id);
          })();
          const q = chunkSelectSql(schema, chunk, byteOrder);
          const rows = await sql(c, q.text, q.values, `reading chunk ${chunk.index} of ${schema.id.schema}.${schema.id.table}`);
          return decodePgRows(i, rows);
        },
        async close() {
          if (closed) return;
          closed = true;
          await sql(c, 'commit').catch(() => undefined);
          await c.end().catch(() => undefined);
        },
      };
      return s;
    },
    async close() {
      await client.end().catch(() => undefined);
    },
  };
}
