import type { RowVersion } from '../conflict/version.js';
import { type Binding, type ColumnDef, type ConflictRow, lockKey, type QualifiedName, type ReplicaColumn, type SqlDialect, type SqlQuery, VERSION_COLUMNS } from '../dialect.js';
import { pgCell, pgCellExpr, pgColumnType, pgDefaultLiteral, quoteArrayElement } from './type-map.js';

type Cell = string | number | null;

/** `"name"`, inner quotes doubled: the only way an identifier reaches PostgreSQL. */
export function pgQuote(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`;
}

const q = pgQuote;

/**
 * Column arrays (one text[] parameter per column) from row-major cells, as array literals: pg's
 * own array serialisation runs two regular expressions per element, which the sink paid per cell.
 */
export function columnsOf(cells: Cell[][], width: number): string[] {
  const cols: string[] = [];
  for (let c = 0; c < width; c++) {
    let lit = '{';
    for (let r = 0; r < cells.length; r++) {
      if (r > 0) lit += ',';
      const v = cells[r]![c];
      lit += v === null || v === undefined ? 'NULL' : quoteArrayElement(typeof v === 'string' ? v : String(v));
    }
    cols.push(`${lit}}`);
  }
  return cols;
}

/** `unnest($1::text[], $2::text[]) [WITH ORDINALITY] AS k(c0, c1 [, i])` starting at parameter `first`. */
function recordSet(width: number, first: number, ordinality: boolean): string {
  const arrays = Array.from({ length: width }, (_, c) => `$${first + c}::text[]`).join(', ');
  const names = Array.from({ length: width }, (_, c) => `c${c}`);
  if (ordinality) names.push('i');
  return `unnest(${arrays})${ordinality ? ' WITH ORDINALITY' : ''} AS k(${names.join(', ')})`;
}

/**
 * FROM the tombstones (`cols` of each) of some keys, one primary-key probe per key. `tbl = $1 AND key_hash = ANY($2)`
 * let the planner, trusting statistics taken while the table was small, scan every tombstone of
 * the table and filter them against the whole list: per batch, O(tombstones x keys) (1.3 s for
 * 8,000 tombstones and 1,000 keys). OFFSET 0 keeps the lateral subquery from being flattened
 * into such a join.
 */
function tombstoneProbe(table: string, tbl: string, hashes: string, cols: string): string {
  return `FROM unnest(${hashes}::text[]) AS h(k)
            CROSS JOIN LATERAL (SELECT ${cols} FROM ${table} WHERE tbl = ${tbl} AND key_hash = h.k OFFSET 0) AS t`;
}

/** The stored tombstones of some keys (`lead`: columns before them). */
function tombstoneRows(table: string, tbl: string, hashes: string, lead: string): string {
  return `SELECT ${lead}t.key_hash, t.ts::text AS ts, t.origin, t.ord ${tombstoneProbe(table, tbl, hashes, 'key_hash, ts, origin, ord')}`;
}

/**
 * `CROSS JOIN LATERAL` the replica table's row of each key `k.c0..`: one primary-key probe per key
 * (the sink's upserts need that key index anyway). A plain join let the planner hash the whole
 * table when it guessed unnest's size (100 rows) against a table it thought small: per batch,
 * O(table) instead of O(batch). OFFSET 0 keeps the subquery from being flattened back into one.
 */
function keyProbe(table: string, key: Binding[]): string {
  return `CROSS JOIN LATERAL (SELECT * FROM ${table} AS t WHERE ${keyJoin(key, 't')} OFFSET 0) AS t`;
}

function keyJoin(key: Binding[], alias: string): string {
  return key.map((b, c) => `${alias}.${q(b.target.name)} = ${pgCellExpr(`k.c${c}`, b.target)}`).join(' AND ');
}

const TS = q(VERSION_COLUMNS.ts);
const ORIGIN = q(VERSION_COLUMNS.origin);
const ORDER = q(VERSION_COLUMNS.order);

export function postgresDialect(): SqlDialect {
  const qualified = (n: QualifiedName) => `${q(n.schema)}.${q(n.table)}`;
  const meta = (schema: string, table: string) => `${q(schema)}.${q(table)}`;

  return {
    kind: 'postgres',
    maxIdentifierLength: 63,
    quote: q,
    qualified,
    identifierProblem(id) {
      if (id.length === 0) return 'empty name';
      if (id.includes('\u0000')) return 'name contains a NUL character';
      const bytes = Buffer.byteLength(id, 'utf8');
      if (bytes > 63) return `name is ${bytes} bytes long; PostgreSQL keeps only 63 (NAMEDATALEN) and would merge it with other names`;
      return null;
    },

    columnType: (col, source) => pgColumnType(col, source),
    defaultLiteral: pgDefaultLiteral,
    toCell: pgCell,
    versionColumnDefs: () => [
      { name: VERSION_COLUMNS.ts, type: 'bigint', nullable: false, defaultLiteral: '0' },
      { name: VERSION_COLUMNS.origin, type: 'text COLLATE "C"', nullable: false, defaultLiteral: "''" },
      { name: VERSION_COLUMNS.order, type: 'text COLLATE "C"', nullable: false, defaultLiteral: "''" },
    ],

    createSchema: (schema) => ({ text: `CREATE SCHEMA IF NOT EXISTS ${q(schema)}`, params: [] }),
    createTable(n, columns, primaryKey) {
      const defs = columns.map((c) => `${q(c.name)} ${c.type}${c.nullable ? '' : ' NOT NULL'}${c.defaultLiteral !== undefined ? ` DEFAULT ${c.defaultLiteral}` : ''}`);
      if (primaryKey.length > 0) defs.push(`PRIMARY KEY (${primaryKey.map(q).join(', ')})`);
      return { text: `CREATE TABLE IF NOT EXISTS ${qualified(n)} (${defs.join(', ')})`, params: [] };
    },
    addColumn: (n, c) => ({
      text: `ALTER TABLE ${qualified(n)} ADD COLUMN IF NOT EXISTS ${q(c.name)} ${c.type}${c.defaultLiteral !== undefined ? ` DEFAULT ${c.defaultLiteral}` : ''}${c.nullable ? '' : ' NOT NULL'}`,
      params: [],
    }),
    alterColumnType: (n, c) => ({ text: `ALTER TABLE ${qualified(n)} ALTER COLUMN ${q(c.name)} TYPE ${c.type} USING ${q(c.name)}::${c.type}`, params: [] }),
    dropNotNull: (n, c) => ({ text: `ALTER TABLE ${qualified(n)} ALTER COLUMN ${q(c.name)} DROP NOT NULL`, params: [] }),
    dropColumn: (n, column) => ({ text: `ALTER TABLE ${qualified(n)} DROP COLUMN IF EXISTS ${q(column)}`, params: [] }),
    introspect: (n) => ({
      text: `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable,
                    NULL::text AS charset, NULL::text AS collation, array_position(i.indkey::int2[], a.attnum) AS pk_position
               FROM pg_attribute a
               LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
              WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
              ORDER BY a.attnum`,
      params: [qualified(n)],
    }),
    unknownTypes: (types) => ({ text: `SELECT t AS type FROM unnest($1::text[]) AS t WHERE to_regtype(t) IS NULL`, params: [types] }),

    readVersions(n, key, keys) {
      return {
        text: `SELECT (k.i - 1)::int AS i, t.${TS}::text AS ts, t.${ORIGIN} AS origin, t.${ORDER} AS ord
                 FROM ${recordSet(key.length, 1, true)} ${keyProbe(qualified(n), key)}`,
        params: columnsOf(keys, key.length),
      };
    },
    readLocalState(n, key, keys, m, tbl, hashes) {
      const w = key.length;
      return {
        text: `SELECT 0 AS src, (k.i - 1)::int AS i, NULL::text AS key_hash, t.${TS}::text AS ts, t.${ORIGIN} AS origin, t.${ORDER} AS ord
                 FROM ${recordSet(w, 1, true)} ${keyProbe(qualified(n), key)}
               UNION ALL
               ${tombstoneRows(meta(m, 'tombstones'), `$${w + 1}`, `$${w + 2}`, '1 AS src, NULL::int AS i, ')}`,
        params: [...columnsOf(keys, w), tbl, hashes],
      };
    },
    readRowsJson(n, key, keys) {
      return {
        text: `SELECT (k.i - 1)::int AS i, row_to_json(t)::text AS row_json
                 FROM ${recordSet(key.length, 1, true)} ${keyProbe(qualified(n), key)}`,
        params: columnsOf(keys, key.length),
      };
    },
    upsert(n, columns, cells, key, update) {
      const exprs = columns.map((b, c) => pgCellExpr(`k.c${c}`, b.target));
      const set = update.map((c) => `${q(c)} = EXCLUDED.${q(c)}`).join(', ');
      return {
        text: `INSERT INTO ${qualified(n)} (${columns.map((b) => q(b.target.name)).join(', ')})
               SELECT ${exprs.join(', ')} FROM ${recordSet(columns.length, 1, false)}
               ON CONFLICT (${key.map(q).join(', ')}) ${set === '' ? 'DO NOTHING' : `DO UPDATE SET ${set}`}`,
        params: columnsOf(cells, columns.length),
      };
    },
    insert(n, columns, cells) {
      const exprs = columns.map((b, c) => pgCellExpr(`k.c${c}`, b.target));
      return {
        text: `INSERT INTO ${qualified(n)} (${columns.map((b) => q(b.target.name)).join(', ')}) SELECT ${exprs.join(', ')} FROM ${recordSet(columns.length, 1, false)}`,
        params: columnsOf(cells, columns.length),
      };
    },
    deleteKeys(n, key, keys) {
      return {
        text: `DELETE FROM ${qualified(n)} AS t USING ${recordSet(key.length, 1, false)} WHERE ${keyJoin(key, 't')}`,
        params: columnsOf(keys, key.length),
      };
    },
    updateByKey(n, key, oldKey, columns, cells) {
      const set = columns.map((b, c) => `${q(b.target.name)} = ${pgCellExpr(`$${c + 1}`, b.target)}`).join(', ');
      const where = key.map((b, c) => `${q(b.target.name)} = ${pgCellExpr(`$${columns.length + c + 1}`, b.target)}`).join(' AND ');
      return { text: `UPDATE ${qualified(n)} SET ${set} WHERE ${where}`, params: [...cells.map((v) => (v === null ? null : String(v))), ...oldKey.map((v) => (v === null ? null : String(v)))] };
    },
    deleteOneRow(n, columns, cells) {
      // Compared as text: works for types without an equality operator (json, point).
      const where = columns.map((b, c) => `t.${q(b.target.name)}::text IS NOT DISTINCT FROM (${pgCellExpr(`$${c + 1}`, b.target)})::text`).join(' AND ');
      return {
        text: `DELETE FROM ${qualified(n)} WHERE ctid = (SELECT ctid FROM ${qualified(n)} AS t WHERE ${where} LIMIT 1)`,
        params: cells.map((v) => (v === null ? null : String(v))),
      };
    },
    deleteOlderThan: (n, v: RowVersion) => ({
      text: `DELETE FROM ${qualified(n)} WHERE (${TS}, ${ORIGIN}, ${ORDER}) < ($1::bigint, $2::text COLLATE "C", $3::text COLLATE "C")`,
      params: [v.tsUs.toString(), v.origin, v.order],
    }),
    truncate: (n) => ({ text: `TRUNCATE ${qualified(n)}`, params: [] }),

    metaDdl(m) {
      return [
        `CREATE SCHEMA IF NOT EXISTS ${q(m)}`,
        `CREATE TABLE IF NOT EXISTS ${meta(m, 'offsets')} (sink text NOT NULL, topic text NOT NULL, "partition" integer NOT NULL,
           next_offset bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (sink, topic, "partition"))`,
        `CREATE TABLE IF NOT EXISTS ${meta(m, 'tables')} (tbl text PRIMARY KEY, schema_json text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`,
        `CREATE TABLE IF NOT EXISTS ${meta(m, 'tombstones')} (tbl text NOT NULL, key_hash text NOT NULL, key_text text NOT NULL,
           ts bigint NOT NULL, origin text COLLATE "C" NOT NULL, ord text COLLATE "C" NOT NULL, deleted_at timestamptz NOT NULL DEFAULT now(),
           PRIMARY KEY (tbl, key_hash))`,
        `CREATE TABLE IF NOT EXISTS ${meta(m, 'conflicts')} (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), sink text NOT NULL,
           tbl text NOT NULL, key_text text NOT NULL, kind text NOT NULL, resolution text NOT NULL,
           local_ts bigint, local_origin text, local_order text, local_row text,
           remote_ts bigint NOT NULL, remote_origin text NOT NULL, remote_order text NOT NULL, remote_row text)`,
      ].map((text) => ({ text, params: [] }));
    },
    loadOffsets: (m, sink, topics) => ({
      text: `SELECT topic, "partition", next_offset::text AS next_offset FROM ${meta(m, 'offsets')} WHERE sink = $1 AND topic = ANY($2::text[])`,
      params: [sink, topics],
    }),
    insertOffset: (m, sink, topic, partition, next) => ({
      text: `INSERT INTO ${meta(m, 'offsets')} (sink, topic, "partition", next_offset) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
      params: [sink, topic, partition, next],
    }),
    advanceOffset: (m, sink, topic, partition, expected, next) => ({
      text: `UPDATE ${meta(m, 'offsets')} SET next_offset = $5, updated_at = now() WHERE sink = $1 AND topic = $2 AND "partition" = $3 AND next_offset = $4`,
      params: [sink, topic, partition, expected, next],
    }),
    registerTable: (m, tbl, schemaJson) => ({
      text: `INSERT INTO ${meta(m, 'tables')} (tbl, schema_json) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
      params: [tbl, schemaJson],
    }),
    recordSchema: (m, tbl, schemaJson) => ({
      text: `UPDATE ${meta(m, 'tables')} SET schema_json = $2, updated_at = now() WHERE tbl = $1`,
      params: [tbl, schemaJson],
    }),
    readTable: (m, tbl) => ({ text: `SELECT schema_json FROM ${meta(m, 'tables')} WHERE tbl = $1`, params: [tbl] }),
    // An advisory transaction lock: a row lock (FOR SHARE) writes the tuple and WAL, and shared by
    // several transactions it creates a MultiXact, on every batch.
    lockTable: (m, tbl, exclusive) => ({
      text: `SELECT ${exclusive ? 'pg_advisory_xact_lock' : 'pg_advisory_xact_lock_shared'}($1::bigint) AS locked`,
      params: [lockKey(`cdc-table:${m}:${tbl}`).toString()],
    }),
    readTombstones: (m, tbl, hashes) => ({ text: tombstoneRows(meta(m, 'tombstones'), '$1', '$2', ''), params: [tbl, hashes] }),
    writeTombstones: (m, tbl, items) => ({
      text: `INSERT INTO ${meta(m, 'tombstones')} (tbl, key_hash, key_text, ts, origin, ord)
             SELECT $1, k.h, k.t, k.ts::bigint, k.o, k.r FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS k(h, t, ts, o, r)
             ON CONFLICT (tbl, key_hash) DO UPDATE SET key_text = EXCLUDED.key_text, ts = EXCLUDED.ts, origin = EXCLUDED.origin, ord = EXCLUDED.ord, deleted_at = now()`,
      params: [tbl, items.map((i) => i.hash), items.map((i) => i.keyText), items.map((i) => i.version.tsUs.toString()), items.map((i) => i.version.origin), items.map((i) => i.version.order)],
    }),
    deleteTombstones: (m, tbl, hashes) => ({
      text: `DELETE FROM ${meta(m, 'tombstones')} WHERE ctid = ANY(ARRAY(SELECT t.ctid ${tombstoneProbe(meta(m, 'tombstones'), '$1', '$2', 'ctid')}))`,
      params: [tbl, hashes],
    }),
    purgeTombstones: (m, olderThanUs) => ({ text: `DELETE FROM ${meta(m, 'tombstones')} WHERE ts < $1`, params: [olderThanUs.toString()] }),
    insertConflicts: (m, rows: ConflictRow[]) => ({
      text: `INSERT INTO ${meta(m, 'conflicts')} (sink, tbl, key_text, kind, resolution, local_ts, local_origin, local_order, local_row, remote_ts, remote_origin, remote_order, remote_row)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[], $9::text[], $10::bigint[], $11::text[], $12::text[], $13::text[])`,
      params: [
        rows.map((r) => r.sink),
        rows.map((r) => r.tbl),
        rows.map((r) => r.keyText),
        rows.map((r) => r.kind),
        rows.map((r) => r.resolution),
        rows.map((r) => r.local?.tsUs.toString() ?? null),
        rows.map((r) => r.local?.origin ?? null),
        rows.map((r) => r.local?.order ?? null),
        rows.map((r) => r.localRow),
        rows.map((r) => r.remote.tsUs.toString()),
        rows.map((r) => r.remote.origin),
        rows.map((r) => r.remote.order),
        rows.map((r) => r.remoteRow),
      ],
    }),
    tryLock: (name) => ({ text: `SELECT pg_try_advisory_lock($1::bigint) AS ok`, params: [lockKey(name).toString()] }),
    unlock: (name) => ({ text: `SELECT pg_advisory_unlock($1::bigint) AS ok`, params: [lockKey(name).toString()] }),
    savepoint: (name) => `SAVEPOINT ${q(name)}`,
    rollbackTo: (name) => `ROLLBACK TO SAVEPOINT ${q(name)}`,
    release: (name) => `RELEASE SAVEPOINT ${q(name)}`,
  };
}

export type { ColumnDef, ReplicaColumn, SqlQuery };
