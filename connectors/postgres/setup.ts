import type pg from 'pg';
import type { Logger } from 'pino';
import { CdcError } from '../../schemas/errors.js';
import { qualified, quoteIdent, splitQualified, sql } from './catalog.js';
import type { ResolvedOptions } from './options.js';
import type { TableFilter } from './tables.js';

/**
 * Idempotent server-side setup of a PostgreSQL source: heartbeat table, replica identities of
 * keyless tables, and the publication. The slot is created on the replication connection
 * (source.ts), so the exported snapshot of a new slot stays usable.
 */

/**
 * Two sessions creating the same object at once: one gets duplicate_object (42710) or
 * duplicate_table (42P07), or, when both passed the existence check, unique_violation (23505) on
 * the catalog's name index.
 */
function isConcurrentCreate(err: unknown): boolean {
  return err instanceof CdcError && ['PG_42710', 'PG_42P07', 'PG_23505'].includes(err.code);
}

export interface CandidateTable {
  schema: string;
  table: string;
  /** Has a primary key or a REPLICA IDENTITY USING INDEX. */
  keyed: boolean;
  /** relreplident: d default, n nothing, f full, i index. */
  replicaIdentity: string;
}

/** Ordinary and partitioned tables outside the system schemas (partitions publish via their root). */
export async function listTables(client: pg.Client): Promise<CandidateTable[]> {
  const rows = await sql(
    client,
    `select n.nspname, c.relname, c.relreplident::text as ri,
            (exists (select 1 from pg_index i where i.indrelid = c.oid and (i.indisprimary or i.indisreplident)))::text as keyed
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind in ('r', 'p') and not c.relispartition
        and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%'
      order by 1, 2`,
    [],
    'listing tables',
  );
  return rows.map((r) => ({ schema: r.nspname ?? '', table: r.relname ?? '', keyed: r.keyed === 'true', replicaIdentity: r.ri ?? 'd' }));
}

export async function ensureHeartbeatTable(client: pg.Client, table: string, log: Logger): Promise<void> {
  const { schema, table: name } = splitQualified(table);
  const exists = await sql(client, `select (to_regclass($1) is not null)::text as e`, [qualified(schema, name)]);
  if (exists[0]?.e === 'true') return;
  try {
    await sql(
      client,
      `create table if not exists ${qualified(schema, name)} (slot_name text primary key, ts timestamptz not null)`,
      [],
      `creating heartbeat table ${table}`,
    );
    log.info({ table }, 'created heartbeat table');
  } catch (err) {
    // Another connector created it at the same moment (IF NOT EXISTS does not cover the race).
    if (!isConcurrentCreate(err)) throw err;
  }
}

/** One heartbeat: a write to a published table, so the slot sees traffic even when captured tables are idle. */
export async function writeHeartbeat(client: pg.Client, table: string, slot: string): Promise<void> {
  const { schema, table: name } = splitQualified(table);
  await sql(
    client,
    `insert into ${qualified(schema, name)} (slot_name, ts) values ($1, now()) on conflict (slot_name) do update set ts = excluded.ts`,
    [slot],
    'writing heartbeat',
  );
}

export interface PublicationPlan {
  /** Tables the publication should list (filtered mode). */
  tables: CandidateTable[];
  /** Keyless tables left out (keylessTables: skip). */
  skippedKeyless: CandidateTable[];
}

/** Which tables a filtered publication should hold; sets REPLICA IDENTITY FULL on keyless ones when configured. */
export async function planTables(client: pg.Client, o: ResolvedOptions, filter: TableFilter, log: Logger): Promise<PublicationPlan> {
  const all = await listTables(client);
  const always = new Set([o.heartbeatEnabled ? o.heartbeatTable : null, o.signalTable].filter((t): t is string => !!t).map((t) => {
    const q = splitQualified(t);
    return `${q.schema}.${q.table}`;
  }));
  const tables: CandidateTable[] = [];
  const skippedKeyless: CandidateTable[] = [];
  for (const t of all) {
    const forced = always.has(`${t.schema}.${t.table}`);
    if (!forced && !filter(t.schema, t.table)) continue;
    if (!t.keyed) {
      if (o.keylessTables === 'skip' && !forced) {
        skippedKeyless.push(t);
        continue;
      }
      if (t.replicaIdentity !== 'f') {
        // Updates and deletes of a published table need a replica identity, or they fail on the source.
        await sql(client, `alter table ${qualified(t.schema, t.table)} replica identity full`, [], `setting REPLICA IDENTITY FULL on ${t.schema}.${t.table}`);
        log.info({ table: `${t.schema}.${t.table}` }, 'table has no primary key: set REPLICA IDENTITY FULL');
        t.replicaIdentity = 'f';
      }
    }
    tables.push(t);
  }
  return { tables, skippedKeyless };
}

export interface PublicationInfo {
  owner: string;
  allTables: boolean;
}

export async function publicationInfo(client: pg.Client, publication: string): Promise<PublicationInfo | null> {
  const rows = await sql(client, `select pg_get_userbyid(pubowner) as owner, puballtables::text as alltables from pg_publication where pubname = $1`, [publication]);
  const r = rows[0];
  return r ? { owner: r.owner ?? '', allTables: r.alltables === 'true' } : null;
}

async function publishedTables(client: pg.Client, publication: string): Promise<Set<string>> {
  const rows = await sql(client, `select schemaname, tablename from pg_publication_tables where pubname = $1`, [publication]);
  return new Set(rows.map((r) => `${r.schemaname}.${r.tablename}`));
}

const PUBLICATION_WITH = `with (publish = 'insert, update, delete, truncate', publish_via_partition_root = true)`;

/**
 * Creates the publication if absent; in filtered mode also brings its table list in line with
 * the plan (ADD / DROP TABLE). Returns the tables added, for logging.
 */
export async function ensurePublication(client: pg.Client, o: ResolvedOptions, plan: PublicationPlan | null, log: Logger): Promise<string[]> {
  const existing = await publicationInfo(client, o.publication);
  const pub = quoteIdent(o.publication);
  if (!existing) {
    try {
      if (o.publicationMode === 'all-tables') {
        await sql(client, `create publication ${pub} for all tables ${PUBLICATION_WITH}`, [], `creating publication ${o.publication}`);
      } else {
        const list = (plan?.tables ?? []).map((t) => qualified(t.schema, t.table)).join(', ');
        await sql(client, `create publication ${pub} ${list ? `for table ${list}` : ''} ${PUBLICATION_WITH}`, [], `creating publication ${o.publication}`);
      }
      log.info({ publication: o.publication, mode: o.publicationMode, tables: plan?.tables.length }, 'created publication');
      return (plan?.tables ?? []).map((t) => `${t.schema}.${t.table}`);
    } catch (err) {
      // Another instance created it between our check and our CREATE: use theirs.
      if (!isConcurrentCreate(err)) throw err;
    }
  }
  if (o.publicationMode === 'all-tables' || plan === null) return [];
  const info = existing ?? (await publicationInfo(client, o.publication));
  if (info?.allTables) return [];
  const have = await publishedTables(client, o.publication);
  const want = new Map(plan.tables.map((t) => [`${t.schema}.${t.table}`, t]));
  const add = [...want.keys()].filter((k) => !have.has(k));
  const drop = [...have].filter((k) => !want.has(k));
  // A concurrent instance doing the same change (42710 already a member, 42704 not a member,
  // 42P01 table dropped meanwhile) is not an error: the next refresh sees the result.
  const raced = (err: unknown) => err instanceof CdcError && ['PG_42710', 'PG_42704', 'PG_42P01'].includes(err.code);
  if (add.length > 0) {
    const list = add.map((k) => want.get(k)!).map((t) => qualified(t.schema, t.table)).join(', ');
    try {
      await sql(client, `alter publication ${pub} add table ${list}`, [], `adding tables to publication ${o.publication}`);
      log.info({ publication: o.publication, tables: add }, 'added tables to publication');
    } catch (err) {
      if (!raced(err)) throw err;
    }
  }
  if (drop.length > 0) {
    const list = drop.map((k) => splitQualified(k)).map((t) => qualified(t.schema, t.table)).join(', ');
    try {
      await sql(client, `alter publication ${pub} drop table ${list}`, [], `dropping tables from publication ${o.publication}`);
      log.info({ publication: o.publication, tables: drop }, 'dropped tables no longer matching the filter from publication');
    } catch (err) {
      if (!raced(err)) throw err;
    }
  }
  return add;
}

export interface SlotInfo {
  plugin: string | null;
  slotType: string;
  database: string | null;
  active: boolean;
  activePid: number | null;
  confirmedFlush: string | null;
  restartLsn: string | null;
}

export async function slotInfo(client: pg.Client, slot: string): Promise<SlotInfo | null> {
  const rows = await sql(
    client,
    `select plugin, slot_type, database, active::text as active, active_pid::text as pid,
            confirmed_flush_lsn::text as confirmed, restart_lsn::text as restart
       from pg_replication_slots where slot_name = $1`,
    [slot],
  );
  const r = rows[0];
  if (!r) return null;
  return {
    plugin: r.plugin ?? null,
    slotType: r.slot_type ?? '',
    database: r.database ?? null,
    active: r.active === 'true',
    activePid: r.pid ? Number(r.pid) : null,
    confirmedFlush: r.confirmed ?? null,
    restartLsn: r.restart ?? null,
  };
}
