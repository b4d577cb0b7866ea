import type { Connection } from 'mysql2/promise';
import type { TableId, TableSchema } from '../../schemas/table-schema.js';
import type { Flavor } from './binlog-stream.js';
import type { Collations } from './charset.js';
import { mysqlError } from './errors.js';
import type { TableFilter } from './filter.js';
import { type InfoColumn, infoColumnSchema } from './type-map.js';

/**
 * Reads from the source server what the binlog does not say: flavor and version, the current
 * binlog position, collations, and table definitions from information_schema (for the schema
 * history). SQL is built here and run on a plain mysql2 connection.
 */

export interface ServerInfo {
  flavor: Flavor;
  version: string;
  serverId: number;
  /** MySQL: gtid_mode is ON (MariaDB always has GTIDs). */
  gtids: boolean;
}

export async function serverInfo(conn: Connection): Promise<ServerInfo> {
  const [rows] = await conn.query('SELECT VERSION() AS v, @@server_id AS sid');
  const r = (rows as { v: string; sid: number | string }[])[0]!;
  const flavor: Flavor = /mariadb/i.test(r.v) ? 'mariadb' : 'mysql';
  let gtids = true;
  if (flavor === 'mysql') {
    const [g] = await conn.query('SELECT @@global.gtid_mode AS m');
    gtids = String((g as { m: string }[])[0]?.m ?? 'OFF').toUpperCase() === 'ON';
  }
  return { flavor, version: r.v, serverId: Number(r.sid), gtids };
}

export interface BinlogEnd {
  file: string;
  pos: number;
  /** MariaDB gtid_binlog_pos, or MySQL gtid_executed; undefined without GTIDs. */
  gtid?: string;
}

/** The current end of the binlog: where a source with no stored position starts. */
export async function binlogEnd(conn: Connection, info: ServerInfo): Promise<BinlogEnd> {
  let status: Record<string, unknown> | undefined;
  try {
    const [rows] = await conn.query('SHOW MASTER STATUS');
    status = (rows as Record<string, unknown>[])[0];
  } catch {
    // MySQL 8.4 removed SHOW MASTER STATUS.
    const [rows] = await conn.query('SHOW BINARY LOG STATUS');
    status = (rows as Record<string, unknown>[])[0];
  }
  if (!status) throw mysqlError(new Error('SHOW MASTER STATUS returned nothing: is log_bin on?'), 'binlog position');
  const end: BinlogEnd = { file: String(status.File), pos: Number(status.Position) };
  if (info.flavor === 'mariadb') {
    const [rows] = await conn.query('SELECT @@global.gtid_binlog_pos AS g');
    end.gtid = String((rows as { g: string }[])[0]?.g ?? '');
  } else if (info.gtids) {
    const [rows] = await conn.query('SELECT @@global.gtid_executed AS g');
    end.gtid = String((rows as { g: string }[])[0]?.g ?? '').replace(/\s+/g, '');
  }
  return end;
}

/** The server's own collation table (ids beyond the static list: MariaDB's UCA 14 ones, for instance). */
export async function loadCollations(conn: Connection, collations: Collations): Promise<void> {
  try {
    // MariaDB 10.10+ lists the ids of every full collation name here.
    const [rows] = await conn.query(
      'SELECT ID AS id, CHARACTER_SET_NAME AS charset, COLLATION_NAME AS name, FULL_COLLATION_NAME AS fullName FROM information_schema.COLLATION_CHARACTER_SET_APPLICABILITY WHERE ID IS NOT NULL',
    );
    collations.load(rows as { id: number; charset: string; name: string; fullName: string }[]);
    return;
  } catch {
    // older servers: no ID column there
  }
  const [rows] = await conn.query('SELECT ID AS id, CHARACTER_SET_NAME AS charset, COLLATION_NAME AS name FROM information_schema.COLLATIONS WHERE ID IS NOT NULL');
  collations.load(rows as { id: number; charset: string; name: string }[]);
}

export function tableKey(db: string, table: string): string {
  return `${db}\u0000${table}`;
}

/** Base tables the filter captures. */
export async function capturedTables(conn: Connection, filter: TableFilter): Promise<TableId[]> {
  const [rows] = await conn.query(
    "SELECT TABLE_SCHEMA AS db, TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY TABLE_SCHEMA, TABLE_NAME",
  );
  return (rows as { db: string; name: string }[]).filter((r) => filter(r.db, r.name)).map((r) => ({ db: r.db, schema: null, table: r.name }));
}

/** Base tables of one database that the filter captures. */
export async function tablesOfDatabase(conn: Connection, db: string, filter: TableFilter): Promise<TableId[]> {
  const [rows] = await conn.query(
    "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')",
    [db],
  );
  return (rows as { name: string }[]).filter((r) => filter(db, r.name)).map((r) => ({ db, schema: null, table: r.name }));
}

/** A table definition as the schema history keeps it: the schema plus each text column's collation id. */
export interface TableDefinition {
  schema: TableSchema;
  /** Collation id per column (character and enum/set columns), to tell LONGTEXT from JSON and catch collation changes. */
  collations: Record<string, number>;
}

/**
 * Current definitions of the given tables from information_schema; tables that do not exist
 * (dropped since) are absent from the result.
 */
export async function loadTableSchemas(conn: Connection, flavor: Flavor, tables: TableId[], collations: Collations): Promise<Map<string, TableDefinition>> {
  const out = new Map<string, TableDefinition>();
  for (let i = 0; i < tables.length; i += 200) {
    const chunk = tables.slice(i, i + 200);
    const pairs = chunk.map(() => '(?, ?)').join(', ');
    const args = chunk.flatMap((t) => [t.db, t.table]);
    const [cols] = await conn.query(
      `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS tbl, COLUMN_NAME AS name, DATA_TYPE AS dataType, COLUMN_TYPE AS columnType,
              IS_NULLABLE AS nullable, COLUMN_DEFAULT AS defaultExpr, CHARACTER_SET_NAME AS charset,
              CHARACTER_MAXIMUM_LENGTH AS charMaxLength, NUMERIC_PRECISION AS numericPrecision, NUMERIC_SCALE AS numericScale,
              DATETIME_PRECISION AS datetimePrecision, COLLATION_NAME AS collation
         FROM information_schema.COLUMNS WHERE (TABLE_SCHEMA, TABLE_NAME) IN (${pairs})
        ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`,
      args,
    );
    const [keys] = await conn.query(
      `SELECT TABLE_SCHEMA AS db, TABLE_NAME AS tbl, COLUMN_NAME AS name FROM information_schema.KEY_COLUMN_USAGE
        WHERE CONSTRAINT_NAME = 'PRIMARY' AND (TABLE_SCHEMA, TABLE_NAME) IN (${pairs}) ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`,
      args,
    );
    // MariaDB's JSON is LONGTEXT with CHECK (json_valid(`col`)): the check is what says JSON.
    const json = new Set<string>();
    if (flavor === 'mariadb') {
      const [checks] = await conn.query(
        `SELECT CONSTRAINT_SCHEMA AS db, TABLE_NAME AS tbl, CHECK_CLAUSE AS clause FROM information_schema.CHECK_CONSTRAINTS
          WHERE (CONSTRAINT_SCHEMA, TABLE_NAME) IN (${pairs}) AND CHECK_CLAUSE LIKE 'json_valid(%'`,
        args,
      );
      for (const r of checks as { db: string; tbl: string; clause: string }[]) {
        const m = /^json_valid\(`((?:[^`]|``)+)`\)$/i.exec(r.clause.trim());
        if (m) json.add(`${tableKey(r.db, r.tbl)}\u0000${m[1]!.replace(/``/g, '`')}`);
      }
    }
    const pk = new Map<string, string[]>();
    for (const r of keys as { db: string; tbl: string; name: string }[]) {
      const k = tableKey(r.db, r.tbl);
      pk.set(k, [...(pk.get(k) ?? []), r.name]);
    }
    for (const r of cols as Record<string, unknown>[]) {
      const k = tableKey(String(r.db), String(r.tbl));
      let def = out.get(k);
      if (!def) {
        def = { schema: { id: { db: String(r.db), schema: null, table: String(r.tbl) }, columns: [], primaryKey: pk.get(k) ?? [], dialect: 'mysql' }, collations: {} };
        out.set(k, def);
      }
      const collationId = collations.idOf(r.collation === null || r.collation === undefined ? null : String(r.collation));
      if (collationId !== undefined) def.collations[String(r.name)] = collationId;
      const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
      const col: InfoColumn = {
        name: String(r.name),
        dataType: String(r.dataType),
        columnType: String(r.columnType),
        nullable: r.nullable === 'YES',
        defaultExpr: r.defaultExpr === null || r.defaultExpr === undefined ? null : String(r.defaultExpr),
        charset: r.charset === null || r.charset === undefined ? null : String(r.charset),
        charMaxLength: num(r.charMaxLength),
        numericPrecision: num(r.numericPrecision),
        numericScale: num(r.numericScale),
        datetimePrecision: num(r.datetimePrecision),
        isJson: json.has(`${k}\u0000${String(r.name)}`),
      };
      def.schema.columns.push(infoColumnSchema(col));
    }
  }
  return out;
}
