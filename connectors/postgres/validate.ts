import type pg from 'pg';
import type { Logger } from 'pino';
import { ConfigError, isRetriable } from '../../schemas/errors.js';
import { retry } from '../../util/retry.js';
import { openSql, splitQualified, sql } from './catalog.js';
import type { ResolvedOptions } from './options.js';
import { publicationInfo, slotInfo } from './setup.js';

/**
 * Reads the source server's settings and says, one line each, what to change (PeerDB's
 * validate.go, Debezium's connection checks). Changes nothing on the server.
 */
export async function serverProblems(client: pg.Client, o: ResolvedOptions): Promise<string[]> {
  const problems: string[] = [];
  const [s] = await sql(
    client,
    `select current_setting('wal_level') as wal_level,
            current_setting('server_version_num') as version,
            current_setting('max_replication_slots') as max_slots,
            current_setting('max_wal_senders') as max_senders,
            (select count(*) from pg_replication_slots)::text as used_slots,
            (select count(*) from pg_stat_replication)::text as used_senders,
            current_user as role, current_database() as db,
            (select (rolreplication or rolsuper)::text from pg_roles where rolname = current_user) as replication,
            (select rolsuper::text from pg_roles where rolname = current_user) as superuser,
            has_database_privilege(current_database(), 'CREATE')::text as can_create`,
    [],
    'reading server settings',
  );
  if (!s) return ['source: cannot read server settings'];
  const where = `source ${o.sourceName}`;
  const role = s.role ?? '?';
  const superuser = s.superuser === 'true';

  if (Number(s.version) < 100000) problems.push(`${where}: PostgreSQL ${s.version} is too old: logical replication with pgoutput needs 10 or later (15 is tested)`);
  if (s.wal_level !== 'logical') problems.push(`${where}: wal_level is '${s.wal_level}': set wal_level = logical in postgresql.conf and restart PostgreSQL`);
  if (s.replication !== 'true') problems.push(`${where}: role ${role} lacks the REPLICATION attribute: ALTER ROLE ${role} WITH REPLICATION (or connect as a superuser)`);

  const slot = await slotInfo(client, o.slot);
  if (!slot) {
    if (Number(s.used_slots) >= Number(s.max_slots)) {
      problems.push(`${where}: all max_replication_slots (${s.max_slots}) are in use: raise max_replication_slots and restart, or drop unused slots (cdc slots list)`);
    }
  } else {
    if (slot.slotType !== 'logical') problems.push(`${where}: replication slot ${o.slot} is a ${slot.slotType} slot: set postgres.slot to another name`);
    else if (slot.plugin !== 'pgoutput') problems.push(`${where}: replication slot ${o.slot} uses plugin ${slot.plugin}, not pgoutput: drop it (cdc slots drop) or set postgres.slot to another name`);
    if (slot.database !== null && slot.database !== s.db) problems.push(`${where}: replication slot ${o.slot} belongs to database ${slot.database}, not ${s.db}: set postgres.slot to another name`);
  }
  if (Number(s.used_senders) >= Number(s.max_senders)) {
    problems.push(`${where}: all max_wal_senders (${s.max_senders}) are in use: raise max_wal_senders and restart PostgreSQL`);
  }

  const pub = await publicationInfo(client, o.publication);
  if (!pub) {
    if (o.publicationMode === 'all-tables' && !superuser) {
      problems.push(`${where}: creating publication ${o.publication} FOR ALL TABLES needs a superuser: connect as one, create it yourself, or set postgres.publicationMode: filtered`);
    } else if (s.can_create !== 'true') {
      problems.push(`${where}: role ${role} cannot create publication ${o.publication}: GRANT CREATE ON DATABASE ${s.db} TO ${role}, or create the publication yourself`);
    }
  } else if (pub.owner !== role && !superuser && o.publicationMode === 'filtered' && !pub.allTables) {
    problems.push(`${where}: publication ${o.publication} is owned by ${pub.owner}, so ${role} cannot change its tables: ALTER PUBLICATION ${o.publication} OWNER TO ${role}, or set postgres.publication to a new name`);
  }

  if (o.heartbeatEnabled) {
    const { schema, table } = splitQualified(o.heartbeatTable);
    const [h] = await sql(
      client,
      `select (to_regclass($1) is not null)::text as exists,
              coalesce((select has_schema_privilege(n.oid, 'CREATE') from pg_namespace n where n.nspname = $2), false)::text as can_create`,
      [`"${schema.replace(/"/g, '""')}"."${table.replace(/"/g, '""')}"`, schema],
    );
    if (h?.exists !== 'true' && h?.can_create !== 'true') {
      problems.push(`${where}: heartbeat table ${o.heartbeatTable} does not exist and ${role} cannot create it in schema ${schema}: create it (slot_name text primary key, ts timestamptz not null), grant CREATE, or set postgres.heartbeatIntervalMs: 0`);
    }
  }
  return problems;
}

export async function validateServer(o: ResolvedOptions, log?: Logger): Promise<void> {
  // A misconfigured server is reported at once. An unreachable one is retried for about half a
  // minute; if it still does not answer, `run` takes over and keeps retrying with backoff (a
  // pipeline started before its database must not exit), and PostgreSQL's own errors name any
  // setting that is wrong once it answers.
  let client: pg.Client;
  try {
    client = await retry(() => openSql(o.url, `cdc-${o.sourceName}-validate`), { maxAttempts: 7 });
  } catch (err) {
    if (!isRetriable(err)) throw err;
    log?.warn({ err: (err as Error).message }, 'source server unreachable: not validated; streaming will retry until it answers');
    return;
  }
  try {
    const problems = await serverProblems(client, o);
    if (problems.length > 0) throw new ConfigError(problems);
  } finally {
    await client.end().catch(() => undefined);
  }
}
