import { type ChildProcess, spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../infra/servers.js';
import { type ChangeEvent, eventKey, eventOldKey, keyChanged } from '../../schemas/change-event.js';
import type { Row } from '../../schemas/column-types.js';
import type { TableSchema } from '../../schemas/table-schema.js';
import type { EventFactory, Replica } from './support.js';

/** Helpers of the fault tests: an audited replica table, a random history and its model, worker processes. */

export const TABLE = 'accounts';

/** The accounts-like table of the sink tests (`name` defaults to the fault tests' table). */
export function schemaOf(db: string, name = TABLE): TableSchema {
  return {
    id: { db, schema: 'public', table: name },
    dialect: 'postgres',
    primaryKey: ['id'],
    columns: [
      { name: 'id', type: { kind: 'int', bits: 64 }, nullable: false, sourceType: 'bigint' },
      { name: 'name', type: { kind: 'string' }, nullable: true, sourceType: 'text' },
      { name: 'balance', type: { kind: 'decimal', precision: 12, scale: 2 }, nullable: false, sourceType: 'numeric(12,2)' },
    ],
  };
}

/** Creates the replica table as the sink would, plus an audit table and an always-firing trigger. */
export async function auditedTable(replica: Replica, container: string): Promise<void> {
  if (replica.kind === 'postgres') {
    await replica.query(`create schema if not exists "${container}"`);
    await replica.query(`create table "${container}".${TABLE} (id bigint primary key, name text, balance numeric(12,2) not null,
      _cdc_ts bigint not null default 0, _cdc_origin text collate "C" not null default '', _cdc_order text collate "C" not null default '')`);
    await replica.query(`create table "${container}".audit (id bigint, ts bigint, ord text, op text)`);
    await replica.query(`create function "${container}".audit_fn() returns trigger language plpgsql as $$
      begin insert into "${container}".audit values (NEW.id, NEW._cdc_ts, NEW._cdc_order, TG_OP); return NEW; end $$`);
    await replica.query(`create trigger t_audit after insert or update on "${container}".${TABLE} for each row execute function "${container}".audit_fn()`);
    // The sink's sessions run as session_replication_role = replica: only ALWAYS triggers fire.
    await replica.query(`alter table "${container}".${TABLE} enable always trigger t_audit`);
  } else {
    await replica.query(`create database if not exists \`${container}\``);
    await replica.query(`create table \`${container}\`.${TABLE} (id bigint primary key, name longtext, balance decimal(12,2) not null,
      _cdc_ts bigint not null default 0, _cdc_origin varbinary(255) not null default '', _cdc_order varbinary(64) not null default '')`);
    await replica.query(`create table \`${container}\`.audit (id bigint, ts bigint, ord varbinary(64), op varchar(8))`);
    await replica.query(`create trigger \`${container}\`.a_ins after insert on \`${container}\`.${TABLE} for each row insert into \`${container}\`.audit values (NEW.id, NEW._cdc_ts, NEW._cdc_order, 'I')`);
    await replica.query(`create trigger \`${container}\`.a_upd after update on \`${container}\`.${TABLE} for each row insert into \`${container}\`.audit values (NEW.id, NEW._cdc_ts, NEW._cdc_order, 'U')`);
  }
}

/** Versions written more than once, and how many writes the audit saw. */
export async function doubleWrites(replica: Replica, container: string): Promise<{ doubles: Record<string, unknown>[]; writes: number }> {
  const t = replica.kind === 'postgres' ? `"${container}".audit` : `\`${container}\`.audit`;
  const doubles = await replica.query(`select id, ts, ord, count(*) as n from ${t} group by id, ts, ord having count(*) > 1`);
  const [w] = await replica.query(`select count(*) as n from ${t}`);
  return { doubles, writes: Number(w!.n) };
}

/**
 * A random history over a changing set of keys: inserts, updates, deletes, and key changes when
 * asked (key changes need LWW in key mode: the old key's delete travels in the new key's partition).
 */
export function history(f: EventFactory, n: number, o: { keyChanges: boolean } = { keyChanges: true }): ChangeEvent[] {
  const live: number[] = [];
  let next = 1;
  const out: ChangeEvent[] = [];
  for (let i = 0; i < n; i++) {
    const roll = Math.random();
    const pick = live[Math.floor(Math.random() * live.length)];
    if (pick === undefined || live.length < 50 || roll < 0.35) {
      const id = next++;
      live.push(id);
      out.push(f.event('c', null, { id: String(id), name: `n${id}`, balance: `${i}.00` }));
    } else if (roll < 0.8) {
      out.push(f.event('u', { id: String(pick) }, { id: String(pick), name: `u${i}`, balance: `${i}.50` }));
    } else if (roll < 0.88 && o.keyChanges) {
      const to = next++;
      live.splice(live.indexOf(pick), 1, to);
      out.push(f.event('u', { id: String(pick) }, { id: String(to), name: `moved${i}`, balance: '1.00' }));
    } else {
      live.splice(live.indexOf(pick), 1);
      out.push(f.event('d', { id: String(pick) }, null));
    }
  }
  return out;
}

export function model(events: ChangeEvent[]): Record<string, string>[] {
  const m = new Map<string, Row>();
  for (const e of events) {
    const k = JSON.stringify(eventKey(e));
    if (e.op === 'd') m.delete(k);
    else {
      if (e.op === 'u' && keyChanged(e)) m.delete(JSON.stringify(eventOldKey(e)));
      m.set(k, e.after!);
    }
  }
  return [...m.values()].map((r) => ({ id: String(r.id), name: String(r.name), balance: String(r.balance) })).sort((a, b) => Number(a.id) - Number(b.id));
}

/** `cdc run --only <sink>` as a child process, its log in `logFile`. */
export function spawnWorker(configFile: string, sink: string, logFile: string, extraEnv: Record<string, string> = {}): ChildProcess {
  const fd = openSync(logFile, 'a');
  return spawn(process.execPath, [join(repoRoot, 'bin', 'cdc.js'), 'run', '-c', configFile, '--only', sink], {
    env: { ...process.env, CDC_SINK_SESSION_TIMEOUT_MS: '6000', ...extraEnv },
    stdio: ['ignore', 'ignore', fd],
  });
}

