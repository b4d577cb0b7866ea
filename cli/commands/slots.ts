import type { Command } from 'commander';
import type pg from 'pg';
import { loadConfig } from '../../config/load.js';
import { type SourceConfig, urlKind } from '../../config/schema.js';
import { openSql, quoteIdent, sql } from '../../connectors/postgres/catalog.js';
import { resolveOptions } from '../../connectors/postgres/options.js';
import { CdcError, ConfigError } from '../../schemas/errors.js';
import { redactUrl } from '../../util/redact.js';
import { EXIT } from '../exit.js';

/**
 * `cdc slots list|drop` and `cdc publications list|drop`: look after the replication slots and
 * publications of the config's PostgreSQL sources. A forgotten slot keeps WAL forever, so
 * `list` shows how much each one retains.
 */

function pgSources(all: SourceConfig[], only?: string): SourceConfig[] {
  const pgs = all.filter((s) => urlKind(s.url) === 'postgres');
  if (only === undefined) return pgs;
  const found = pgs.filter((s) => s.name === only);
  if (found.length === 0) throw new ConfigError([`--source: no PostgreSQL source named "${only}" in the config`]);
  return found;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

async function withSource<T>(s: SourceConfig, f: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await openSql(s.url, 'cdc-cli');
  try {
    return await f(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

const mb = (bytes: string | null) => (bytes === null ? '-' : (Number(bytes) / 1048576).toFixed(1));

async function listSlots(s: SourceConfig): Promise<string> {
  const o = resolveOptions(s);
  const rows = await withSource(s, (c) =>
    sql(
      c,
      `select slot_name, coalesce(plugin, '-') as plugin, slot_type, coalesce(database, '-') as database, active::text as active,
              coalesce(active_pid::text, '-') as pid, coalesce(confirmed_flush_lsn::text, '-') as confirmed,
              (pg_current_wal_lsn() - restart_lsn)::int8::text as retained, coalesce(wal_status, '-') as wal_status
         from pg_replication_slots order by slot_name`,
    ),
  );
  const lines = [['SLOT', 'PLUGIN', 'DATABASE', 'ACTIVE', 'PID', 'CONFIRMED_LSN', 'RETAINED_MB', 'WAL_STATUS', '']];
  for (const r of rows) {
    lines.push([r.slot_name!, r.plugin!, r.database!, r.active === 'true' ? 'yes' : 'no', r.pid!, r.confirmed!, mb(r.retained ?? null), r.wal_status!, r.slot_name === o.slot ? `<- source ${s.name}` : '']);
  }
  return `source ${s.name} (${redactUrl(s.url)}): ${rows.length} slot(s) on the server\n${table(lines)}\n`;
}

async function listPublications(s: SourceConfig): Promise<string> {
  const o = resolveOptions(s);
  const rows = await withSource(s, (c) =>
    sql(
      c,
      `select p.pubname, pg_get_userbyid(p.pubowner) as owner, p.puballtables::text as alltables,
              (select count(*) from pg_publication_tables t where t.pubname = p.pubname)::text as tables,
              concat_ws(',', case when pubinsert then 'insert' end, case when pubupdate then 'update' end,
                        case when pubdelete then 'delete' end, case when pubtruncate then 'truncate' end) as publish
         from pg_publication p order by 1`,
    ),
  );
  const lines = [['PUBLICATION', 'OWNER', 'ALL_TABLES', 'TABLES', 'PUBLISH', '']];
  for (const r of rows) lines.push([r.pubname!, r.owner!, r.alltables === 'true' ? 'yes' : 'no', r.tables!, r.publish!, r.pubname === o.publication ? `<- source ${s.name}` : '']);
  return `source ${s.name} (${redactUrl(s.url)}): ${rows.length} publication(s) in the database\n${table(lines)}\n`;
}

async function dropSlot(s: SourceConfig, name: string | undefined): Promise<string> {
  const slot = name ?? resolveOptions(s).slot;
  return withSource(s, async (c) => {
    const [r] = await sql(c, `select active::text as active, active_pid::text as pid from pg_replication_slots where slot_name = $1`, [slot]);
    if (!r) throw new CdcError(`source ${s.name}: no replication slot named ${slot}`, { code: 'NOT_FOUND' });
    if (r.active === 'true') throw new CdcError(`source ${s.name}: slot ${slot} is in use by process ${r.pid}: stop the connector first`, { code: 'IN_USE' });
    await sql(c, `select pg_drop_replication_slot($1)`, [slot], `dropping slot ${slot}`);
    return `source ${s.name}: dropped replication slot ${slot} (the next run starts from the current end of the WAL)\n`;
  });
}

async function dropPublication(s: SourceConfig, name: string | undefined): Promise<string> {
  const pub = name ?? resolveOptions(s).publication;
  return withSource(s, async (c) => {
    const [r] = await sql(c, `select 1 as x from pg_publication where pubname = $1`, [pub]);
    if (!r) throw new CdcError(`source ${s.name}: no publication named ${pub}`, { code: 'NOT_FOUND' });
    await sql(c, `drop publication ${quoteIdent(pub)}`, [], `dropping publication ${pub}`);
    return `source ${s.name}: dropped publication ${pub}\n`;
  });
}

interface Opts {
  config: string;
  source?: string;
  name?: string;
}

function action(f: (s: SourceConfig, o: Opts) => Promise<string>, single: boolean) {
  return async (o: Opts) => {
    const cfg = await loadConfig(o.config);
    if (single && o.source === undefined && pgSources(cfg.sources).length !== 1) {
      throw new ConfigError(['--source: required when the config has more or fewer than one PostgreSQL source']);
    }
    const sources = pgSources(cfg.sources, o.source);
    if (sources.length === 0) throw new ConfigError([`${o.config}: the config has no PostgreSQL source`]);
    for (const s of sources) process.stdout.write(await f(s, o));
    process.exitCode = EXIT.ok;
  };
}

export function registerSlots(program: Command): void {
  const slots = program.command('slots').description('replication slots of the PostgreSQL sources');
  slots
    .command('list')
    .description("list the source servers' replication slots, with the WAL each retains")
    .requiredOption('-c, --config <file>', 'pipeline config (YAML)')
    .option('--source <name>', 'only this source')
    .action(action((s) => listSlots(s), false));
  slots
    .command('drop')
    .description("drop a source's replication slot (default: the one its config names); the connector must be stopped")
    .requiredOption('-c, --config <file>', 'pipeline config (YAML)')
    .option('--source <name>', 'the source (required when the config has several PostgreSQL sources)')
    .option('--name <slot>', 'slot to drop instead of the configured one')
    .action(action((s, o) => dropSlot(s, o.name), true));

  const pubs = program.command('publications').description('publications of the PostgreSQL sources');
  pubs
    .command('list')
    .description("list the source databases' publications")
    .requiredOption('-c, --config <file>', 'pipeline config (YAML)')
    .option('--source <name>', 'only this source')
    .action(action((s) => listPublications(s), false));
  pubs
    .command('drop')
    .description("drop a source's publication (default: the one its config names)")
    .requiredOption('-c, --config <file>', 'pipeline config (YAML)')
    .option('--source <name>', 'the source (required when the config has several PostgreSQL sources)')
    .option('--name <publication>', 'publication to drop instead of the configured one')
    .action(action((s, o) => dropPublication(s, o.name), true));
}
