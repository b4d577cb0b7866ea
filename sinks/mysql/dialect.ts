import { createHash } from 'node:crypto';
import type { RowVersion } from '../conflict/version.js';
import { type Binding, type ConflictRow, type QualifiedName, type SqlDialect, type SqlQuery, VERSION_COLUMNS } from '../dialect.js';
import { mysqlCell, mysqlCellExpr, mysqlColumnType, mysqlDefaultLiteral, mysqlKeyExpr, sqlString } from './type-map.js';

type Cell = string | number | null;

/** `` `name` ``, inner backticks doubled: the only way an identifier reaches MySQL. */
export function mysqlQuote(identifier: string): string {
  return `\`${identifier.replace(/`/g, '``')}\``;
}

const q = mysqlQuote;
const BIN = 'CHARSET utf8mb4 COLLATE utf8mb4_bin';

/** Rows travel as one JSON parameter, unpacked by JSON_TABLE into text columns c0..cN (and i, 1-based). */
function recordSet(width: number, ordinality: boolean): string {
  const cols = Array.from({ length: width }, (_, c) => `c${c} LONGTEXT PATH '$[${c}]'`);
  if (ordinality) cols.unshift('i FOR ORDINALITY');
  return `JSON_TABLE(?, '$[*]' COLUMNS(${cols.join(', ')})) AS k`;
}

const cellsJson = (cells: Cell[][]): string => JSON.stringify(cells.map((row) => row.map((v) => (v === null || v === undefined ? null : String(v)))));

function keyJoin(key: Binding[], alias: string): string {
  return key.map((b, c) => `${alias}.${q(b.target.name)} = ${mysqlKeyExpr(`k.c${c}`, b.target)}`).join(' AND ');
}

/** A list of strings as a JSON_TABLE of one binary-collated column `v`. */
const listTable = (width: number, alias: string) => `JSON_TABLE(?, '$[*]' COLUMNS(v VARCHAR(${width}) ${BIN} PATH '$')) AS ${alias}`;

const TS = q(VERSION_COLUMNS.ts);
const ORIGIN = q(VERSION_COLUMNS.origin);
const ORDER = q(VERSION_COLUMNS.order);

export function mysqlDialect(): SqlDialect {
  const qualified = (n: QualifiedName) => `${q(n.schema)}.${q(n.table)}`;
  const meta = (db: string, table: string) => `${q(db)}.${q(table)}`;

  return {
    kind: 'mysql',
    maxIdentifierLength: 64,
    quote: q,
    qualified,
    identifierProblem(id) {
      if (id.length === 0) return 'empty name';
      if (id.includes('\u0000')) return 'name contains a NUL character';
      if ([...id].length > 64) return `name is ${[...id].length} characters long; MySQL allows 64`;
      if (/ $/.test(id)) return 'name ends with a space, which MySQL does not allow';
      return null;
    },

    columnType: (col, source, o) => mysqlColumnType(col, source, o),
    defaultLiteral: mysqlDefaultLiteral,
    toCell: mysqlCell,
    versionColumnDefs: () => [
      { name: VERSION_COLUMNS.ts, type: 'bigint', nullable: false, defaultLiteral: '0' },
      // Binary, so the replica orders them byte for byte as the sink does.
      { name: VERSION_COLUMNS.origin, type: 'varbinary(255)', nullable: false, defaultLiteral: "''" },
      { name: VERSION_COLUMNS.order, type: 'varbinary(64)', nullable: false, defaultLiteral: "''" },
    ],

    createSchema: (db) => ({ text: `CREATE DATABASE IF NOT EXISTS ${q(db)} CHARACTER SET utf8mb4`, params: [] }),
    createTable(n, columns, primaryKey) {
      const defs = columns.map((c) => `${q(c.name)} ${c.type}${c.nullable ? ' NULL' : ' NOT NULL'}${c.defaultLiteral !== undefined ? ` DEFAULT ${c.defaultLiteral}` : ''}`);
      if (primaryKey.length > 0) defs.push(`PRIMARY KEY (${primaryKey.map(q).join(', ')})`);
      return { text: `CREATE TABLE IF NOT EXISTS ${qualified(n)} (${defs.join(', ')}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`, params: [] };
    },
    addColumn: (n, c) => ({
      text: `ALTER TABLE ${qualified(n)} ADD COLUMN IF NOT EXISTS ${q(c.name)} ${c.type}${c.nullable ? ' NULL' : ' NOT NULL'}${c.defaultLiteral !== undefined ? ` DEFAULT ${c.defaultLiteral}` : ''}`,
      params: [],
    }),
    alterColumnType: (n, c) => ({ text: `ALTER TABLE ${qualified(n)} MODIFY COLUMN ${q(c.name)} ${c.type}${c.nullable ? ' NULL' : ' NOT NULL'}`, params: [] }),
    dropNotNull: (n, c) => ({
      text: `ALTER TABLE ${qualified(n)} MODIFY COLUMN ${q(c.name)} ${c.type}${c.charset && c.collation ? ` CHARACTER SET ${c.charset} COLLATE ${c.collation}` : ''} NULL`,
      params: [],
    }),
    dropColumn: (n, column) => ({ text: `ALTER TABLE ${qualified(n)} DROP COLUMN IF EXISTS ${q(column)}`, params: [] }),
    introspect: (n) => ({
      text: `SELECT c.COLUMN_NAME AS name, c.COLUMN_TYPE AS type, c.IS_NULLABLE AS nullable, c.CHARACTER_SET_NAME AS charset, c.COLLATION_NAME AS collation,
                    (SELECT k.ORDINAL_POSITION FROM information_schema.KEY_COLUMN_USAGE k
                      WHERE k.TABLE_SCHEMA = c.TABLE_SCHEMA AND k.TABLE_NAME = c.TABLE_NAME AND k.COLUMN_NAME = c.COLUMN_NAME AND k.CONSTRAINT_NAME = 'PRIMARY') AS pk_position
               FROM information_schema.COLUMNS c WHERE c.TABLE_SCHEMA = ? AND c.TABLE_NAME = ? ORDER BY c.ORDINAL_POSITION`,
      params: [n.schema, n.table],
    }),

    readVersions: (n, key, keys) => ({
      text: `SELECT k.i - 1 AS i, CAST(t.${TS} AS CHAR) AS ts, t.${ORIGIN} AS origin, t.${ORDER} AS ord
               FROM ${recordSet(key.length, true)} JOIN ${qualified(n)} AS t ON ${keyJoin(key, 't')}`,
      params: [cellsJson(keys)],
    }),
    readLocalState: (n, key, keys, m, tbl, hashes) => ({
      text: `SELECT 0 AS src, k.i - 1 AS i, NULL AS key_hash, CAST(t.${TS} AS CHAR) AS ts, t.${ORIGIN} AS origin, t.${ORDER} AS ord
               FROM ${recordSet(key.length, true)} JOIN ${qualified(n)} AS t ON ${keyJoin(key, 't')}
             UNION ALL
             SELECT 1, NULL, tb.key_hash, CAST(tb.ts AS CHAR), tb.origin, tb.ord FROM ${listTable(64, 'j')} JOIN ${meta(m, 'tombstones')} AS tb ON tb.tbl = ? AND tb.key_hash = j.v`,
      params: [cellsJson(keys), JSON.stringify(hashes), tbl],
    }),
    readRowsJson(n, key, keys, columns) {
      const obj = columns.map((c) => `${sqlString(c)}, t.${q(c)}`).join(', ');
      return {
        text: `SELECT k.i - 1 AS i, JSON_OBJECT(${obj}) AS row_json FROM ${recordSet(key.length, true)} JOIN ${qualified(n)} AS t ON ${keyJoin(key, 't')}`,
        params: [cellsJson(keys)],
      };
    },
    upsert(n, columns, cells, key, update) {
      const exprs = columns.map((b, c) => mysqlCellExpr(`k.c${c}`, b.target));
      const set = update.length > 0 ? update.map((c) => `${q(c)} = VALUES(${q(c)})`).join(', ') : `${q(key[0]!)} = ${q(key[0]!)}`;
      return {
        text: `INSERT INTO ${qualified(n)} (${columns.map((b) => q(b.target.name)).join(', ')}) SELECT ${exprs.join(', ')} FROM ${recordSet(columns.length, false)} ON DUPLICATE KEY UPDATE ${set}`,
        params: [cellsJson(cells)],
      };
    },
    insert(n, columns, cells) {
      const exprs = columns.map((b, c) => mysqlCellExpr(`k.c${c}`, b.target));
      return {
        text: `INSERT INTO ${qualified(n)} (${columns.map((b) => q(b.target.name)).join(', ')}) SELECT ${exprs.join(', ')} FROM ${recordSet(columns.length, false)}`,
        params: [cellsJson(cells)],
      };
    },
    deleteKeys: (n, key, keys) => ({
      text: `DELETE t FROM ${qualified(n)} AS t JOIN ${recordSet(key.length, false)} ON ${keyJoin(key, 't')}`,
      params: [cellsJson(keys)],
    }),
    updateByKey(n, key, oldKey, columns, cells) {
      const set = columns.map((b) => `${q(b.target.name)} = ${mysqlCellExpr('?', b.target)}`).join(', ');
      const where = key.map((b) => `${q(b.target.name)} = ${mysqlKeyExpr('?', b.target)}`).join(' AND ');
      return { text: `UPDATE ${qualified(n)} SET ${set} WHERE ${where}`, params: [...cells, ...oldKey].map((v) => (v === null ? null : String(v))) };
    },
    deleteOneRow(n, columns, cells) {
      const where = columns.map((b) => `${q(b.target.name)} <=> ${mysqlKeyExpr('?', b.target)}`).join(' AND ');
      return { text: `DELETE FROM ${qualified(n)} WHERE ${where} LIMIT 1`, params: cells.map((v) => (v === null ? null : String(v))) };
    },
    deleteOlderThan: (n, v: RowVersion) => ({
      text: `DELETE FROM ${qualified(n)} WHERE (${TS}, ${ORIGIN}, ${ORDER}) < (?, CAST(? AS BINARY), CAST(? AS BINARY))`,
      params: [v.tsUs.toString(), v.origin, v.order],
    }),
    truncate: (n) => ({ text: `DELETE FROM ${qualified(n)}`, params: [] }),

    metaDdl(m) {
      const tableOpts = 'ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin';
      return [
        `CREATE DATABASE IF NOT EXISTS ${q(m)} CHARACTER SET utf8mb4`,
        `CREATE TABLE IF NOT EXISTS ${meta(m, 'offsets')} (sink VARCHAR(190) NOT NULL, topic VARCHAR(249) NOT NULL, \`partition\` INT NOT NULL,
           next_offset BIGINT NOT NULL, updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), PRIMARY KEY (sink, topic, \`partition\`)) ${tableOpts}`,
        `CREATE TABLE IF NOT EXISTS ${meta(m, 'tables')} (tbl VARCHAR(700) NOT NULL PRIMARY KEY, schema_json LONGTEXT NOT NULL,
           updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ${tableOpts}`,
        `CREATE TABLE IF NOT EXISTS ${meta(m, 'tombstones')} (tbl VARCHAR(600) NOT NULL, key_hash VARCHAR(64) NOT NULL, key_text LONGTEXT NOT NULL,
           ts BIGINT NOT NULL, origin VARBINARY(255) NOT NULL, ord VARBINARY(64) NOT NULL, deleted_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
           PRIMARY KEY (tbl, key_hash)) ${tableOpts}`,
        `CREATE TABLE IF NOT EXISTS ${meta(m, 'conflicts')} (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
           sink VARCHAR(190) NOT NULL, tbl TEXT NOT NULL, key_text LONGTEXT NOT NULL, kind VARCHAR(32) NOT NULL, resolution VARCHAR(32) NOT NULL,
           local_ts BIGINT NULL, local_origin VARBINARY(255) NULL, local_order VARBINARY(64) NULL, local_row LONGTEXT NULL,
           remote_ts BIGINT NOT NULL, remote_origin VARBINARY(255) NOT NULL, remote_order VARBINARY(64) NOT NULL, remote_row LONGTEXT NULL) ${tableOpts}`,
      ].map((text) => ({ text, params: [] }));
    },
    loadOffsets: (m, sink, topics) => ({
      text: `SELECT o.topic, o.\`partition\`, CAST(o.next_offset AS CHAR) AS next_offset FROM ${listTable(249, 'j')} JOIN ${meta(m, 'offsets')} AS o ON o.sink = ? AND o.topic = j.v`,
      params: [JSON.stringify(topics), sink],
    }),
    insertOffset: (m, sink, topic, partition, next) => ({
      text: `INSERT IGNORE INTO ${meta(m, 'offsets')} (sink, topic, \`partition\`, next_offset) VALUES (?, ?, ?, ?)`,
      params: [sink, topic, partition, next],
    }),
    advanceOffset: (m, sink, topic, partition, expected, next) => ({
      text: `UPDATE ${meta(m, 'offsets')} SET next_offset = ?, updated_at = CURRENT_TIMESTAMP(6) WHERE sink = ? AND topic = ? AND \`partition\` = ? AND next_offset = ?`,
      params: [next, sink, topic, partition, expected],
    }),
    registerTable: (m, tbl, schemaJson) => ({ text: `INSERT IGNORE INTO ${meta(m, 'tables')} (tbl, schema_json) VALUES (?, ?)`, params: [tbl, schemaJson] }),
    recordSchema: (m, tbl, schemaJson) => ({
      text: `UPDATE ${meta(m, 'tables')} SET schema_json = ?, updated_at = CURRENT_TIMESTAMP(6) WHERE tbl = ?`,
      params: [schemaJson, tbl],
    }),
    readTable: (m, tbl) => ({ text: `SELECT schema_json FROM ${meta(m, 'tables')} WHERE tbl = ?`, params: [tbl] }),
    lockTable: (m, tbl, exclusive) => ({
      text: `SELECT 1 AS locked FROM ${meta(m, 'tables')} WHERE tbl = ? ${exclusive ? 'FOR UPDATE' : 'LOCK IN SHARE MODE'}`,
      params: [tbl],
    }),
    readTombstones: (m, tbl, hashes) => ({
      text: `SELECT t.key_hash, CAST(t.ts AS CHAR) AS ts, t.origin, t.ord FROM ${listTable(64, 'j')} JOIN ${meta(m, 'tombstones')} AS t ON t.tbl = ? AND t.key_hash = j.v`,
      params: [JSON.stringify(hashes), tbl],
    }),
    writeTombstones: (m, tbl, items) => ({
      text: `INSERT INTO ${meta(m, 'tombstones')} (tbl, key_hash, key_text, ts, origin, ord)
             SELECT ?, k.c0, k.c1, k.c2, k.c3, k.c4 FROM ${recordSet(5, false)}
             ON DUPLICATE KEY UPDATE key_text = VALUES(key_text), ts = VALUES(ts), origin = VALUES(origin), ord = VALUES(ord), deleted_at = CURRENT_TIMESTAMP(6)`,
      params: [tbl, JSON.stringify(items.map((i) => [i.hash, i.keyText, i.version.tsUs.toString(), i.version.origin, i.version.order]))],
    }),
    deleteTombstones: (m, tbl, hashes) => ({
      text: `DELETE t FROM ${meta(m, 'tombstones')} AS t JOIN ${listTable(64, 'j')} ON t.key_hash = j.v WHERE t.tbl = ?`,
      params: [JSON.stringify(hashes), tbl],
    }),
    purgeTombstones: (m, olderThanUs) => ({ text: `DELETE FROM ${meta(m, 'tombstones')} WHERE ts < ?`, params: [olderThanUs.toString()] }),
    insertConflicts: (m, rows: ConflictRow[]) => ({
      text: `INSERT INTO ${meta(m, 'conflicts')} (sink, tbl, key_text, kind, resolution, local_ts, local_origin, local_order, local_row, remote_ts, remote_origin, remote_order, remote_row)
             SELECT k.c0, k.c1, k.c2, k.c3, k.c4, k.c5, k.c6, k.c7, k.c8, k.c9, k.c10, k.c11, k.c12 FROM ${recordSet(13, false)}`,
      params: [
        JSON.stringify(
          rows.map((r) => [
            r.sink,
            r.tbl,
            r.keyText,
            r.kind,
            r.resolution,
            r.local?.tsUs.toString() ?? null,
            r.local?.origin ?? null,
            r.local?.order ?? null,
            r.localRow,
            r.remote.tsUs.toString(),
            r.remote.origin,
            r.remote.order,
            r.remoteRow,
          ]),
        ),
      ],
    }),
    // GET_LOCK names are limited to 64 characters.
    tryLock: (name) => ({ text: `SELECT GET_LOCK(?, 0) AS ok`, params: [lockName(name)] }),
    unlock: (name) => ({ text: `SELECT RELEASE_LOCK(?) AS ok`, params: [lockName(name)] }),
    savepoint: (name) => `SAVEPOINT ${q(name)}`,
    rollbackTo: (name) => `ROLLBACK TO SAVEPOINT ${q(name)}`,
    release: (name) => `RELEASE SAVEPOINT ${q(name)}`,
  };
}

function lockName(name: string): string {
  return `cdc:${createHash('sha256').update(name).digest('hex').slice(0, 40)}`;
}

export type { SqlQuery };
