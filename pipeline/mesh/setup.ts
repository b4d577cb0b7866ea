import mysql from 'mysql2/promise';
import pg from 'pg';
import type { MeshConfig } from '../../config/schema.js';
import { CdcError, ConfigError } from '../../schemas/errors.js';
import { type QualifiedName, VERSION_COLUMNS } from '../../sinks/dialect.js';
import { mysqlDialect, mysqlQuote } from '../../sinks/mysql/dialect.js';
import { sqlString } from '../../sinks/mysql/type-map.js';
import { pgQuote, postgresDialect } from '../../sinks/postgres/dialect.js';
import type { Logger } from '../../util/log.js';
import { redactUrl } from '../../util/redact.js';
import { CLOCK_TABLE, MESH_LOCK_KEY, type MeshNode, OUTBOX_TABLE } from './config.js';
import { strategyFor } from '../../sinks/conflict/index.js';

/**
 * Prepares one mesh node's database (idempotent; run before the node's pipeline starts):
 *
 * - the sink's bookkeeping tables, plus `mesh_clock` (the node's hybrid logical clock: the highest
 *   version applied from other nodes) and `mesh_outbox` (carries each local delete's version to
 *   the node's own source, in the same transaction as the delete);
 * - the version columns `_cdc_ts`, `_cdc_origin`, `_cdc_order` on every mesh table (and, for
 *   version-vector tables, `_cdc_vv` and `_cdc_cts`);
 * - row triggers that version every *local* write at write time: `_cdc_ts` = HLC
 *   max(wall clock, clock + 1, previous version of the row or its tombstone + 1); a local delete
 *   leaves a tombstone at its version. They take the mesh lock in shared mode, and apply
 *   transactions take it exclusively (sinks[].beginSql), so a local write never interleaves with
 *   an apply's read-compare-write. In apply sessions the same triggers advance the clock to the
 *   versions being applied (the HLC "receive" rule). See docs/multi-master.md.
 */

/** Key column types whose canonical text the triggers can reproduce exactly (the sink's keyText). */
const PG_KEY_TYPES = /^(smallint|integer|bigint|text|character varying(\(\d+\))?|uuid)$/;
const MYSQL_KEY_TYPES = new Set(['tinyint', 'smallint', 'mediumint', 'int', 'bigint', 'varchar', 'uuid']);

interface TableInfo {
  name: string;
  columns: { name: string; type: string; string: boolean }[];
  key: string[];
}

/** Name of an object the mesh creates for a table (trigger, function), within identifier limits. */
function objectName(prefix: string, table: string): string {
  const clean = table.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 40);
  let h = 0;
  for (const c of table) h = (h * 31 + c.codePointAt(0)!) >>> 0;
  return `${prefix}_${clean}_${h.toString(36)}`;
}

/** `["<schema>","<table>"]`: the key the sink's tombstones and tables use (replica.ts tblKey). */
export function tblKey(n: QualifiedName): string {
  return JSON.stringify([n.schema, n.table]);
}

const pgLit = (s: string): string => `'${s.replace(/'/g, "''")}'`;

/** SQL text equal to the sink's `keyText` (sinks/apply.ts) of the key columns of row `r` (NEW / OLD). */
export function pgKeyText(key: string[], r: string): string {
  return `('[' || concat_ws(',', ${key.map((k) => `to_json(${r}.${pgQuote(k)}::text)::text`).join(', ')}) || ']')`;
}

/** MariaDB's JSON_QUOTE writes \u001F where JSON.stringify writes \u001f: lower-case those escapes. */
function mysqlJsonString(expr: string): string {
  let out = `JSON_QUOTE(CAST(${expr} AS CHAR CHARACTER SET utf8mb4))`;
  for (const code of [0x0b, 0x0e, 0x0f, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f]) {
    const hex = code.toString(16).padStart(4, '0');
    out = `REPLACE(${out}, '\\\\u${hex.toUpperCase()}', '\\\\u${hex}')`;
  }
  return out;
}

export function mysqlKeyText(t: TableInfo, r: string): string {
  const parts = t.key.map((k) => {
    const col = t.columns.find((c) => c.name === k)!;
    const ref = `${r}.${mysqlQuote(k)}`;
    return col.string ? mysqlJsonString(ref) : `JSON_QUOTE(CAST(${ref} AS CHAR))`;
  });
  return `CONCAT('[', ${parts.join(", ',', ")}, ']')`;
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------------

async function pgTables(c: pg.Client, schema: string, names: string[]): Promise<TableInfo[]> {
  const out: TableInfo[] = [];
  const problems: string[] = [];
  for (const name of names) {
    const cols = await c.query<{ name: string; type: string; pk: number | null }>(
      `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, array_position(i.indkey::int2[], a.attnum) AS pk
         FROM pg_attribute a LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
        WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [`${pgQuote(schema)}.${pgQuote(name)}`],
    );
    if (cols.rows.length === 0) {
      problems.push(`mesh.tables: table ${schema}.${name} does not exist on this node (create the mesh tables on every node first)`);
      continue;
    }
    const key = cols.rows.filter((r) => r.pk !== null).sort((a, b) => a.pk! - b.pk!).map((r) => r.name);
    if (key.length === 0) problems.push(`mesh.tables: ${schema}.${name} has no primary key`);
    for (const k of cols.rows.filter((r) => r.pk !== null)) {
      if (!PG_KEY_TYPES.test(k.type)) problems.push(`mesh.tables: ${schema}.${name}.${k.name} is ${k.type}; mesh keys must be smallint, integer, bigint, text, varchar or uuid`);
    }
    out.push({ name, key, columns: cols.rows.map((r) => ({ name: r.name, type: r.type, string: /char|text/.test(r.type) })) });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out;
}

function pgTriggerFunction(meta: string, node: MeshNode, t: TableInfo, vv: boolean): string {
  const m = pgQuote(meta);
  const tbl = pgLit(tblKey({ schema: node.schema, table: t.name }));
  const origin = pgLit(node.name);
  const hash = (expr: string) => `left(encode(sha256(convert_to(${expr}, 'UTF8')), 'hex'), 40)`;
  const TS = pgQuote(VERSION_COLUMNS.ts);
  const tombstone = (kt: string) =>
    `INSERT INTO ${m}.tombstones AS x (tbl, key_hash, key_text, ts, origin, ord) VALUES (${tbl}, ${hash(kt)}, ${kt}, ts, ${origin}, '')
       ON CONFLICT (tbl, key_hash) DO UPDATE SET key_text = EXCLUDED.key_text, ts = EXCLUDED.ts, origin = EXCLUDED.origin, ord = EXCLUDED.ord, deleted_at = now()
       WHERE (x.ts, x.origin, x.ord) < (EXCLUDED.ts, EXCLUDED.origin, EXCLUDED.ord);`;
  const nonKey = t.columns.filter((c) => !t.key.includes(c.name) && !MESH_COLUMNS.includes(c.name));
  const vvTick = (old: string) =>
    `jsonb_set(coalesce(${old}, '{}'::jsonb), ARRAY[${origin}], to_jsonb(coalesce((${old} ->> ${origin})::bigint, 0) + 1))`;
  const vvInsert = vv
    ? `NEW._cdc_vv := jsonb_build_object(${origin}, 1)::text;
       NEW._cdc_cts := jsonb_build_object(${nonKey.map((c) => `${pgLit(c.name)}, jsonb_build_array(ts, ${origin})`).join(', ') || ''})::text;`
    : '';
  const vvUpdate = vv
    ? `NEW._cdc_vv := ${vvTick('OLD._cdc_vv::jsonb')}::text;
       cts := coalesce(OLD._cdc_cts::jsonb, '{}'::jsonb);
       ${nonKey.map((c) => `IF NEW.${pgQuote(c.name)}::text IS DISTINCT FROM OLD.${pgQuote(c.name)}::text THEN cts := jsonb_set(cts, ARRAY[${pgLit(c.name)}], jsonb_build_array(ts, ${origin})); END IF;`).join('\n       ')}
       NEW._cdc_cts := cts::text;`
    : '';
  return `CREATE OR REPLACE FUNCTION ${m}.${pgQuote(objectName('cdc_mesh', t.name))}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $cdc$
DECLARE
  clk bigint; ts bigint; tb bigint; kt text; okt text; oid bigint; seen text; cts jsonb;
BEGIN
  IF current_setting('cdc.mesh_apply', true) = 'on' THEN
    -- Apply session (the node's sink): the clock observes the version being applied.
    IF TG_OP <> 'DELETE' THEN
      seen := current_setting('cdc.mesh_seen', true);
      IF seen IS NULL OR seen = '' OR NEW.${TS} > seen::bigint THEN
        UPDATE ${m}.${pgQuote(CLOCK_TABLE)} SET l = NEW.${TS} WHERE id = 1 AND l < NEW.${TS};
        PERFORM set_config('cdc.mesh_seen', NEW.${TS}::text, true);
      END IF;
      RETURN NEW;
    END IF;
    RETURN OLD;
  END IF;
  -- A local write: versioned by the hybrid logical clock, never while an apply transaction runs
  -- (the statement trigger took the shared mesh lock already; this is a no-op re-take).
  PERFORM pg_advisory_xact_lock_shared(${MESH_LOCK_KEY});
  SELECT l INTO clk FROM ${m}.${pgQuote(CLOCK_TABLE)} WHERE id = 1;
  ts := greatest((extract(epoch from clock_timestamp()) * 1000000)::bigint, coalesce(clk, 0) + 1);
  IF TG_OP = 'DELETE' THEN
    ts := greatest(ts, OLD.${TS} + 1);
    okt := ${pgKeyText(t.key, 'OLD')};
    ${tombstone('okt')}
    INSERT INTO ${m}.${pgQuote(OUTBOX_TABLE)} (tbl, key_text, ts, origin, vv) VALUES (${pgLit(t.name)}, okt, ts, ${origin}, ${vv ? `${vvTick('OLD._cdc_vv::jsonb')}::text` : 'NULL'}) RETURNING id INTO oid;
    DELETE FROM ${m}.${pgQuote(OUTBOX_TABLE)} WHERE id = oid;
    RETURN OLD;
  END IF;
  kt := ${pgKeyText(t.key, 'NEW')};
  IF TG_OP = 'UPDATE' THEN
    ts := greatest(ts, OLD.${TS} + 1);
    okt := ${pgKeyText(t.key, 'OLD')};
  END IF;
  IF TG_OP = 'INSERT' OR okt IS DISTINCT FROM kt THEN
    SELECT x.ts INTO tb FROM ${m}.tombstones x WHERE x.tbl = ${tbl} AND x.key_hash = ${hash('kt')};
    IF tb IS NOT NULL THEN ts := greatest(ts, tb + 1); END IF;
  END IF;
  IF TG_OP = 'UPDATE' AND okt IS DISTINCT FROM kt THEN
    -- A key change deletes the old key at this version (the sinks apply it as delete + insert).
    ${tombstone('okt')}
  END IF;
  NEW.${TS} := ts;
  NEW.${pgQuote(VERSION_COLUMNS.origin)} := ${origin};
  NEW.${pgQuote(VERSION_COLUMNS.order)} := '';
  IF TG_OP = 'INSERT' OR okt IS DISTINCT FROM kt THEN
    ${vvInsert}
  ELSE
    ${vvUpdate}
  END IF;
  RETURN NEW;
END $cdc$`;
}

/**
 * Statement-level lock of local writers. PostgreSQL locks a row before its BEFORE ROW triggers run
 * (to hand them the latest version), so taking the shared mesh lock there would let a writer hold
 * a row lock while waiting for an apply transaction that waits for that row: a deadlock. A BEFORE
 * STATEMENT trigger runs before the statement locks any row.
 */
function pgStatementLock(meta: string): string {
  return pgLocalSessionsTrigger(meta, 'cdc_mesh_statement_lock', `PERFORM pg_advisory_xact_lock_shared(${MESH_LOCK_KEY});`);
}

/**
 * TRUNCATE bypasses the row triggers (no versions, no tombstones), so nodes could not agree on
 * what it removed: refused on mesh tables for local sessions (DELETE is replicated per row).
 */
function pgTruncateGuard(meta: string): string {
  return pgLocalSessionsTrigger(
    meta,
    'cdc_mesh_no_truncate',
    `RAISE EXCEPTION 'TRUNCATE of %.% is not replicated by the mesh: use DELETE (see docs/multi-master.md)', TG_TABLE_SCHEMA, TG_TABLE_NAME
      USING ERRCODE = 'feature_not_supported';`,
  );
}

/** A statement-level trigger function that runs `body` for local sessions only (not the mesh's apply). */
function pgLocalSessionsTrigger(meta: string, name: string, body: string): string {
  return `CREATE OR REPLACE FUNCTION ${pgQuote(meta)}.${name}() RETURNS trigger
LANGUAGE plpgsql AS $cdc$
BEGIN
  IF coalesce(current_setting('cdc.mesh_apply', true), '') <> 'on' THEN
    ${body}
  END IF;
  RETURN NULL;
END $cdc$`;
}

/** Clock observation for tombstones the sink writes (apply sessions only). */
function pgTombstoneObserver(meta: string): string {
  const m = pgQuote(meta);
  return `CREATE OR REPLACE FUNCTION ${m}.cdc_mesh_observe_tombstone() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $cdc$
BEGIN
  IF current_setting('cdc.mesh_apply', true) = 'on' THEN
    UPDATE ${m}.${pgQuote(CLOCK_TABLE)} SET l = NEW.ts WHERE id = 1 AND l < NEW.ts;
  END IF;
  RETURN NEW;
END $cdc$`;
}

/**
 * Run on each new apply session (sinks[].initSql): marks it as an apply session for the triggers
 * and sets up a replication origin, so pgoutput flags its transactions and the node's own source
 * skips them. PostgreSQL 15 lets one session use an origin at a time: take the first free of
 * `<prefix>_0 .. <prefix>_<n-1>` (a bounded set: every origin ever used keeps a slot of
 * max_replication_slots until dropped).
 */
function pgApplySessionFunction(meta: string): string {
  return `CREATE OR REPLACE FUNCTION ${pgQuote(meta)}.cdc_mesh_apply_session(p_prefix text, p_max int) RETURNS text
LANGUAGE plpgsql AS $cdc$
DECLARE nm text;
BEGIN
  PERFORM set_config('cdc.mesh_apply', 'on', false);
  IF pg_replication_origin_session_is_setup() THEN RETURN NULL; END IF;
  FOR i IN 0 .. p_max - 1 LOOP
    nm := p_prefix || '_' || i;
    IF pg_replication_origin_oid(nm) IS NULL THEN
      BEGIN
        PERFORM pg_replication_origin_create(nm);
      EXCEPTION WHEN unique_violation THEN NULL;
      END;
    END IF;
    BEGIN
      PERFORM pg_replication_origin_session_setup(nm);
      RETURN nm;
    EXCEPTION WHEN object_in_use THEN NULL;
    END;
  END LOOP;
  RAISE EXCEPTION 'all % replication origins %_* are in use by other sessions', p_max, p_prefix;
END $cdc$`;
}

async function preparePostgres(mesh: MeshConfig, node: MeshNode, log: Logger): Promise<void> {
  const c = new pg.Client({ connectionString: node.url, application_name: `cdc-mesh-setup-${node.name}` });
  try {
    await c.connect();
  } catch (err) {
    throw new CdcError(`mesh node ${node.name}: cannot connect to ${redactUrl(node.url)}: ${(err as Error).message}`, { retriable: true, cause: err });
  }
  try {
    const [{ wal_level: walLevel } = { wal_level: '' }] = (await c.query<{ wal_level: string }>('SHOW wal_level')).rows;
    if (walLevel !== 'logical') throw new ConfigError([`mesh node ${node.name}: wal_level is ${walLevel}; set wal_level = logical and restart PostgreSQL`]);
    const meta = mesh.metaSchema;
    const m = pgQuote(meta);
    const d = postgresDialect();
    const tables = await pgTables(c, node.schema, mesh.tables);
    await c.query('BEGIN');
    // One setup at a time per database (several region processes may start together).
    await c.query(`SELECT pg_advisory_xact_lock(${MESH_LOCK_KEY + 1n})`);
    for (const stmt of d.metaDdl(meta)) await c.query(stmt.text);
    await c.query(`CREATE TABLE IF NOT EXISTS ${m}.${pgQuote(CLOCK_TABLE)} (id int PRIMARY KEY, l bigint NOT NULL)`);
    await c.query(`INSERT INTO ${m}.${pgQuote(CLOCK_TABLE)} VALUES (1, 0) ON CONFLICT DO NOTHING`);
    await c.query(
      `CREATE TABLE IF NOT EXISTS ${m}.${pgQuote(OUTBOX_TABLE)} (id bigserial PRIMARY KEY, tbl text NOT NULL, key_text text NOT NULL, ts bigint NOT NULL, origin text NOT NULL, vv text)`,
    );
    await c.query(pgApplySessionFunction(meta));
    await c.query(pgTombstoneObserver(meta));
    await c.query(pgStatementLock(meta));
    await c.query(pgTruncateGuard(meta));
    for (const name of ['cdc_mesh_observe', 'cdc_mesh_observe_apply']) {
      await c.query(`CREATE OR REPLACE TRIGGER ${pgQuote(name)} BEFORE INSERT OR UPDATE ON ${m}.tombstones FOR EACH ROW EXECUTE FUNCTION ${m}.cdc_mesh_observe_tombstone()`);
    }
    // Apply sessions run with session_replication_role = replica when they can (superuser): only
    // REPLICA triggers fire there; the ORIGIN one covers the others. Both check the session mark.
    await c.query(`ALTER TABLE ${m}.tombstones ENABLE REPLICA TRIGGER cdc_mesh_observe_apply`);
    for (const t of tables) {
      const vv = ['version-vector', 'custom'].includes(strategyFor(mesh.conflict, { schema: node.schema, table: t.name }).strategy);
      const n = { schema: node.schema, table: t.name };
      const q = d.qualified(n);
      for (const def of d.versionColumnDefs()) await c.query(d.addColumn(n, def).text);
      if (vv) for (const col of VV_COLUMNS) await c.query(`ALTER TABLE ${q} ADD COLUMN IF NOT EXISTS ${pgQuote(col)} text`);
      const info = vv ? (await pgTables(c, node.schema, [t.name]))[0]! : t;
      const fn = `${m}.${pgQuote(objectName('cdc_mesh', t.name))}`;
      await c.query(pgTriggerFunction(meta, node, info, vv));
      await c.query(`CREATE OR REPLACE TRIGGER cdc_mesh_lock BEFORE INSERT OR UPDATE OR DELETE ON ${q} FOR EACH STATEMENT EXECUTE FUNCTION ${m}.cdc_mesh_statement_lock()`);
      await c.query(`CREATE OR REPLACE TRIGGER cdc_mesh_local BEFORE INSERT OR UPDATE OR DELETE ON ${q} FOR EACH ROW EXECUTE FUNCTION ${fn}()`);
      await c.query(`CREATE OR REPLACE TRIGGER cdc_mesh_no_truncate BEFORE TRUNCATE ON ${q} FOR EACH STATEMENT EXECUTE FUNCTION ${m}.cdc_mesh_no_truncate()`);
      await c.query(`CREATE OR REPLACE TRIGGER cdc_mesh_apply BEFORE INSERT OR UPDATE ON ${q} FOR EACH ROW EXECUTE FUNCTION ${fn}()`);
      await c.query(`ALTER TABLE ${q} ENABLE REPLICA TRIGGER cdc_mesh_apply`);
    }
    await c.query('COMMIT');
    log.info({ node: node.name, tables: tables.map((t) => t.name) }, 'mesh node prepared');
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    await c.end().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// MySQL / MariaDB
// ---------------------------------------------------------------------------------------------

async function mysqlTables(c: mysql.Connection, db: string, names: string[]): Promise<TableInfo[]> {
  const out: TableInfo[] = [];
  const problems: string[] = [];
  for (const name of names) {
    const [rows] = await c.query(
      `SELECT c.COLUMN_NAME AS name, c.DATA_TYPE AS type, c.CHARACTER_SET_NAME AS cs, s.SEQ_IN_INDEX AS pk
         FROM information_schema.COLUMNS c
         LEFT JOIN information_schema.STATISTICS s ON s.TABLE_SCHEMA = c.TABLE_SCHEMA AND s.TABLE_NAME = c.TABLE_NAME AND s.COLUMN_NAME = c.COLUMN_NAME AND s.INDEX_NAME = 'PRIMARY'
        WHERE c.TABLE_SCHEMA = ? AND c.TABLE_NAME = ? ORDER BY c.ORDINAL_POSITION`,
      [db, name],
    );
    const cols = rows as { name: string; type: string; cs: string | null; pk: number | null }[];
    if (cols.length === 0) {
      problems.push(`mesh.tables: table ${db}.${name} does not exist on this node (create the mesh tables on every node first)`);
      continue;
    }
    const key = cols.filter((r) => r.pk !== null).sort((a, b) => Number(a.pk) - Number(b.pk)).map((r) => r.name);
    if (key.length === 0) problems.push(`mesh.tables: ${db}.${name} has no primary key`);
    for (const k of cols.filter((r) => r.pk !== null)) {
      if (!MYSQL_KEY_TYPES.has(k.type)) problems.push(`mesh.tables: ${db}.${name}.${k.name} is ${k.type}; mesh keys must be integers, varchar or uuid`);
    }
    out.push({ name, key, columns: cols.map((r) => ({ name: r.name, type: r.type, string: r.cs !== null })) });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out;
}

function mysqlTriggers(meta: string, node: MeshNode, t: TableInfo, vv: boolean): { name: string; sql: string }[] {
  const m = mysqlQuote(meta);
  const clock = `${m}.${mysqlQuote(CLOCK_TABLE)}`;
  const tbl = sqlString(tblKey({ schema: node.schema, table: t.name }));
  const origin = sqlString(node.name);
  const target = `${mysqlQuote(node.schema)}.${mysqlQuote(t.name)}`;
  const TS = mysqlQuote(VERSION_COLUMNS.ts);
  const now = `TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6))`;
  const hash = (expr: string) => `LEFT(SHA2(${expr}, 256), 40)`;
  // A local delete's version is above every version the replica holds for the key: overwrite.
  const tombstone = (kt: string) =>
    `INSERT INTO ${m}.tombstones (tbl, key_hash, key_text, ts, origin, ord) VALUES (${tbl}, ${hash(kt)}, ${kt}, ts, ${origin}, '')
       ON DUPLICATE KEY UPDATE key_text = VALUES(key_text), ts = VALUES(ts), origin = VALUES(origin), ord = VALUES(ord), deleted_at = CURRENT_TIMESTAMP(6);`;
  const observe = `UPDATE ${clock} SET l = NEW.${TS} WHERE id = 1 AND l < NEW.${TS};`;
  const localHead = `SELECT l INTO clk FROM ${clock} WHERE id = 1 LOCK IN SHARE MODE;
    SET ts = GREATEST(${now}, IFNULL(clk, 0) + 1);`;
  const nonKey = t.columns.filter((c) => !t.key.includes(c.name) && !MESH_COLUMNS.includes(c.name));
  const path = (name: string) => sqlString(`$."${name.replace(/["\\]/g, (ch) => `\\${ch}`)}"`);
  const tick = (old: string) => `JSON_SET(COALESCE(${old}, '{}'), ${path(node.name)}, COALESCE(JSON_VALUE(${old}, ${path(node.name)}), 0) + 1)`;
  const setVersion = `SET NEW.${TS} = ts, NEW.${mysqlQuote(VERSION_COLUMNS.origin)} = ${origin}, NEW.${mysqlQuote(VERSION_COLUMNS.order)} = '';`;
  const tombLookup = (kt: string) => `SET tb = (SELECT x.ts FROM ${m}.tombstones x WHERE x.tbl = ${tbl} AND x.key_hash = ${hash(kt)});
    IF tb IS NOT NULL THEN SET ts = GREATEST(ts, tb + 1); END IF;`;
  const vvFresh = vv
    ? `SET NEW._cdc_vv = JSON_OBJECT(${origin}, 1);
    SET NEW._cdc_cts = JSON_OBJECT(${nonKey.map((c) => `${sqlString(c.name)}, JSON_ARRAY(ts, ${origin})`).join(', ')});`
    : '';
  const declare = `DECLARE clk BIGINT DEFAULT NULL; DECLARE ts BIGINT; DECLARE tb BIGINT DEFAULT NULL; DECLARE kt LONGTEXT; DECLARE okt LONGTEXT; DECLARE cts LONGTEXT;`;
  const isApply = `@@session.server_id <> @@global.server_id`;
  return [
    {
      name: objectName('cdc_mesh_bi', t.name),
      sql: `BEFORE INSERT ON ${target} FOR EACH ROW BEGIN
  ${declare}
  IF ${isApply} THEN
    ${observe}
  ELSE
    ${localHead}
    SET kt = ${mysqlKeyText(t, 'NEW')};
    ${tombLookup('kt')}
    ${setVersion}
    ${vvFresh}
  END IF;
END`,
    },
    {
      name: objectName('cdc_mesh_bu', t.name),
      sql: `BEFORE UPDATE ON ${target} FOR EACH ROW BEGIN
  ${declare}
  IF ${isApply} THEN
    ${observe}
  ELSE
    ${localHead}
    SET ts = GREATEST(ts, OLD.${TS} + 1);
    SET kt = ${mysqlKeyText(t, 'NEW')};
    SET okt = ${mysqlKeyText(t, 'OLD')};
    IF NOT (kt <=> okt) THEN
      ${tombLookup('kt')}
      ${tombstone('okt')}
    END IF;
    ${setVersion}
    ${
      vv
        ? `IF NOT (kt <=> okt) THEN
      ${vvFresh}
    ELSE
      SET NEW._cdc_vv = ${tick('OLD._cdc_vv')};
      SET cts = COALESCE(OLD._cdc_cts, '{}');
      ${nonKey.map((c) => `IF NOT (NEW.${mysqlQuote(c.name)} <=> OLD.${mysqlQuote(c.name)}) THEN SET cts = JSON_SET(cts, ${path(c.name)}, JSON_ARRAY(ts, ${origin})); END IF;`).join('\n      ')}
      SET NEW._cdc_cts = cts;
    END IF;`
        : ''
    }
  END IF;
END`,
    },
    {
      name: objectName('cdc_mesh_bd', t.name),
      sql: `BEFORE DELETE ON ${target} FOR EACH ROW BEGIN
  ${declare}
  IF NOT (${isApply}) THEN
    ${localHead}
    SET ts = GREATEST(ts, OLD.${TS} + 1);
    SET okt = ${mysqlKeyText(t, 'OLD')};
    ${tombstone('okt')}
    INSERT INTO ${m}.${mysqlQuote(OUTBOX_TABLE)} (tbl, key_text, ts, origin, vv) VALUES (${sqlString(t.name)}, okt, ts, ${origin}, ${vv ? tick('OLD._cdc_vv') : 'NULL'});
    DELETE FROM ${m}.${mysqlQuote(OUTBOX_TABLE)} WHERE id = LAST_INSERT_ID();
  END IF;
END`,
    },
  ];
}

async function prepareMysql(mesh: MeshConfig, node: MeshNode, log: Logger): Promise<void> {
  let c: mysql.Connection;
  try {
    c = await mysql.createConnection({ uri: node.url.replace(/^mariadb:/i, 'mysql:'), charset: 'utf8mb4', supportBigNumbers: true, bigNumberStrings: true });
  } catch (err) {
    throw new CdcError(`mesh node ${node.name}: cannot connect to ${redactUrl(node.url)}: ${(err as Error).message}`, { retriable: true, cause: err });
  }
  try {
    const [[vars]] = (await c.query(`SELECT @@global.server_id AS sid, @@global.binlog_format AS fmt, @@global.log_bin AS lb`)) as unknown as [[{ sid: string; fmt: string; lb: string | number }]];
    if (Number(vars.sid) === node.applyServerId) {
      throw new ConfigError([`mesh.nodes[${node.index}].applyServerId ${node.applyServerId} is the server's own server_id; choose another`]);
    }
    const meta = mesh.metaSchema;
    const m = mysqlQuote(meta);
    const d = mysqlDialect();
    const tables = await mysqlTables(c, node.schema, mesh.tables);
    const [[lock]] = (await c.query(`SELECT GET_LOCK(?, 60) AS ok`, [`cdc-mesh-setup:${meta}`])) as unknown as [[{ ok: number }]];
    if (Number(lock.ok) !== 1) throw new Error('mesh setup: timed out waiting for another setup of this node');
    try {
      for (const stmt of d.metaDdl(meta)) await c.query(stmt.text);
      await c.query(`CREATE TABLE IF NOT EXISTS ${m}.${mysqlQuote(CLOCK_TABLE)} (id INT PRIMARY KEY, l BIGINT NOT NULL) ENGINE=InnoDB`);
      await c.query(`INSERT IGNORE INTO ${m}.${mysqlQuote(CLOCK_TABLE)} VALUES (1, 0)`);
      await c.query(
        `CREATE TABLE IF NOT EXISTS ${m}.${mysqlQuote(OUTBOX_TABLE)} (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, tbl VARCHAR(600) NOT NULL,
           key_text LONGTEXT NOT NULL, ts BIGINT NOT NULL, origin VARCHAR(255) NOT NULL, vv LONGTEXT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      );
      // Tombstones the sink writes advance the clock (apply sessions only).
      await c.query(`CREATE OR REPLACE TRIGGER ${m}.cdc_mesh_observe_ti BEFORE INSERT ON ${m}.tombstones FOR EACH ROW BEGIN
        IF @@session.server_id <> @@global.server_id THEN UPDATE ${m}.${mysqlQuote(CLOCK_TABLE)} SET l = NEW.ts WHERE id = 1 AND l < NEW.ts; END IF; END`);
      await c.query(`CREATE OR REPLACE TRIGGER ${m}.cdc_mesh_observe_tu BEFORE UPDATE ON ${m}.tombstones FOR EACH ROW BEGIN
        IF @@session.server_id <> @@global.server_id THEN UPDATE ${m}.${mysqlQuote(CLOCK_TABLE)} SET l = NEW.ts WHERE id = 1 AND l < NEW.ts; END IF; END`);
      for (const t of tables) {
        const vv = ['version-vector', 'custom'].includes(strategyFor(mesh.conflict, { schema: node.schema, table: t.name }).strategy);
        const n = { schema: node.schema, table: t.name };
        for (const def of d.versionColumnDefs()) await c.query(d.addColumn(n, def).text);
        if (vv) for (const col of VV_COLUMNS) await c.query(`ALTER TABLE ${d.qualified(n)} ADD COLUMN IF NOT EXISTS ${mysqlQuote(col)} LONGTEXT NULL`);
        const info = vv ? (await mysqlTables(c, node.schema, [t.name]))[0]! : t;
        for (const trg of mysqlTriggers(meta, node, info, vv)) {
          await c.query(`CREATE OR REPLACE TRIGGER ${mysqlQuote(node.schema)}.${mysqlQuote(trg.name)} ${trg.sql}`);
        }
      }
    } finally {
      await c.query(`SELECT RELEASE_LOCK(?)`, [`cdc-mesh-setup:${meta}`]).catch(() => undefined);
    }
    void vars;
    log.info({ node: node.name, tables: tables.map((t) => t.name) }, 'mesh node prepared');
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Version-vector tables carry these two columns too (JSON text), replicated like data. */
export const VV_COLUMNS = ['_cdc_vv', '_cdc_cts'];
/** Every column the mesh adds; never versioned per column. */
export const MESH_COLUMNS: readonly string[] = [...Object.values(VERSION_COLUMNS), ...VV_COLUMNS];

/** Prepares a mesh node's database; idempotent. */
export async function prepareMeshNode(mesh: MeshConfig, node: MeshNode, log: Logger): Promise<void> {
  if (node.kind === 'postgres') await preparePostgres(mesh, node, log);
  else await prepareMysql(mesh, node, log);
}
