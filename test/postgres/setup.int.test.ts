// Slot and publication management, table selection (filter, keyless tables, signal table, new
// tables), server validation and the slot-created hook, against the shared source server.
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import type { PipelineConfig } from '../../config/schema.js';
import { createPostgresSource } from '../../connectors/postgres/index.js';
import { ConfigError } from '../../schemas/index.js';
import { uniq } from '../helpers.js';
import {
  type Running,
  type TestDb,
  adminQuery,
  captureSource,
  changes,
  collect,
  createTestDb,
  deleteTopics,
  dropTestDb,
  sleep,
  startSource,
  testConfig,
  topicsOf,
  txEvent,
} from './harness.js';

// Each test's connectors, databases and topics go when the test ends: connectors left running
// would all keep decoding the server's WAL and slow the tests after them.
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function setup(prefix: string, ddl: string, opts: Parameters<typeof testConfig>[1] = {}): Promise<{ db: TestDb; cfg: PipelineConfig }> {
  const db = await createTestDb(prefix);
  cleanups.push(() => dropTestDb(db));
  if (ddl) await db.q(ddl);
  const cfg = testConfig(db, opts);
  cleanups.push(() => deleteTopics(cfg.name));
  return { db, cfg };
}

function run(cfg: PipelineConfig, hooks = {}): Running {
  const r = startSource(cfg, hooks);
  cleanups.push(() => r.stop());
  return r;
}

async function until<T>(what: string, f: () => Promise<T | undefined | null | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const publicationTables = async (db: TestDb) =>
  (await db.q(`select schemaname || '.' || tablename as t from pg_publication_tables where pubname = $1 order by 1`, [db.name])).map((r) => r.t);
const slotActive = (db: TestDb) => until('slot', async () => (await db.q(`select 1 from pg_replication_slots where slot_name = $1 and active`, [db.name])).length > 0);

describe('postgres source: publication and table selection', () => {
  it('publishes only the filtered tables and skips keyless ones without breaking their updates', async () => {
    const { db, cfg } = await setup(
      't_filter',
      `create schema app;
       create table app.users (id int primary key, name text);
       create table app.tmp_x (id int primary key);
       create table app.nokey (a int, b text);
       create table other (id int primary key);`,
      { source: { tables: { include: ['app.*'], exclude: ['app.tmp_*'] } } },
    );
    run(cfg);
    await slotActive(db);
    expect(await publicationTables(db)).toEqual(['app.users']);
    await db.q(`insert into app.nokey values (1, 'x'); update app.nokey set b = 'y'; delete from app.nokey;
                insert into other values (1); insert into app.tmp_x values (1); insert into app.users values (1, 'ada')`);
    const users = topicsOf(cfg).table({ db: db.name, schema: 'app', table: 'users' });
    const ev = await changes(await collect([users, topicsOf(cfg).transaction], (m) => m.length >= 3));
    expect(ev.map((e) => `${e.schema.id.schema}.${e.schema.id.table}:${e.op}`)).toEqual(['app.users:c']);
    const tx = await Promise.all((await collect([topicsOf(cfg).transaction], (m) => m.length >= 2)).map(txEvent));
    expect(tx[1]!.data_collections).toEqual([{ data_collection: `${db.name}.app.users`, event_count: 1 }]);
  });

  it('streams the signal table whatever the filter says', async () => {
    const { db, cfg } = await setup(
      't_signal',
      `create table users (id int primary key); create table public.cdc_signal (id text primary key, type text, data text)`,
      { source: { tables: { include: ['public.users'] } }, postgres: { signalTable: 'public.cdc_signal' } },
    );
    // The source runner hands signal-table events to the incremental-snapshot hook, so this looks
    // at what the connector itself emits.
    const cap = captureSource(cfg);
    cleanups.push(() => cap.stop());
    await slotActive(db);
    expect(await publicationTables(db)).toEqual(['public.cdc_signal', 'public.users']);
    await db.q(`insert into users values (1); insert into cdc_signal values ('s1', 'execute-snapshot', '{}')`);
    await until('events', async () => cap.records.filter((r) => r.type === 'change').length >= 2);
    const ev = cap.records.flatMap((r) => (r.type === 'change' ? [r.event] : []));
    expect(ev.map((e) => e.schema.id.table)).toEqual(['users', 'cdc_signal']);
    expect(ev[1]!.after).toEqual({ id: 's1', type: 'execute-snapshot', data: '{}' });
    expect(ev[1]!.schema.primaryKey).toEqual(['id']);
  });

  it('captures keyless tables with REPLICA IDENTITY FULL when configured', async () => {
    const { db, cfg } = await setup('t_keyless', `create table nokey (a int, b text); insert into nokey values (1, 'x')`, { postgres: { keylessTables: 'replica-identity-full' } });
    run(cfg);
    await slotActive(db);
    expect((await db.q(`select relreplident::text as r from pg_class where relname = 'nokey'`))[0]!.r).toBe('f');
    await db.q(`update nokey set b = 'y'; delete from nokey`);
    const topic = topicsOf(cfg).table({ db: db.name, schema: 'public', table: 'nokey' });
    const ev = await changes(await collect([topic], (m) => m.length >= 2));
    expect(ev.map((e) => e.op)).toEqual(['u', 'd']);
    expect(ev[0]!.before).toEqual({ a: 1, b: 'x' });
    expect(ev[0]!.after).toEqual({ a: 1, b: 'y' });
    expect(ev[1]!.before).toEqual({ a: 1, b: 'y' });
    expect(ev[0]!.schema.primaryKey).toEqual([]);
  });

  it('adds tables created later to a filtered publication', async () => {
    const { db, cfg } = await setup('t_refresh', `create table first (id int primary key)`, { postgres: { tableRefreshIntervalMs: 300 } });
    run(cfg);
    await slotActive(db);
    await db.q(`create table later (id int primary key, v text)`);
    await until('later in publication', async () => (await publicationTables(db)).includes('public.later'));
    await db.q(`insert into later values (1, 'v')`);
    const ev = await changes(await collect([topicsOf(cfg).table({ db: db.name, schema: 'public', table: 'later' })], (m) => m.length >= 1));
    expect(ev[0]!.after).toEqual({ id: 1, v: 'v' });
  });

  it('captures a new table from its first row with publicationMode all-tables, filtering on our side', async () => {
    const { db, cfg } = await setup('t_alltables', `create table skipped (id int primary key)`, {
      source: { tables: { exclude: ['public.skipped'] } },
      postgres: { publicationMode: 'all-tables' },
    });
    run(cfg);
    await slotActive(db);
    expect((await db.q(`select puballtables::text as a from pg_publication where pubname = $1`, [db.name]))[0]!.a).toBe('true');
    await db.q(`create table fresh (id int primary key); insert into fresh values (7); insert into skipped values (1)`);
    const ev = await changes(await collect([topicsOf(cfg).table({ db: db.name, schema: 'public', table: 'fresh' })], (m) => m.length >= 1));
    expect(ev[0]!.after).toEqual({ id: 7 });
    await sleep(500);
    const admin = (await import('./harness.js')).kafka.admin();
    await admin.connect();
    const topics = await admin.listTopics();
    await admin.disconnect();
    expect(topics).not.toContain(topicsOf(cfg).table({ db: db.name, schema: 'public', table: 'skipped' }));
  });
});

describe('postgres source: slot creation hook', () => {
  it('runs onSlotCreated between slot creation and streaming, with a usable exported snapshot', async () => {
    const { db, cfg } = await setup('t_hook', `create table t (id int primary key); insert into t values (1), (2)`);
    let seen: { snapshotName: string | null; consistentPoint: string; rows: string[] } | null = null;
    run(cfg, {
      onSlotCreated: async (info: { snapshotName: string | null; consistentPoint: string }) => {
        // A write after the slot exists: in the stream, not in the snapshot.
        await db.q(`insert into t values (3)`);
        const c = new pg.Client(db.url);
        await c.connect();
        try {
          await c.query('begin isolation level repeatable read');
          await c.query(`set transaction snapshot '${info.snapshotName}'`);
          const rows = (await c.query('select id from t order by id')).rows.map((r: { id: number }) => String(r.id));
          await c.query('commit');
          seen = { ...info, rows };
        } finally {
          await c.end();
        }
      },
    });
    const ev = await changes(await collect([topicsOf(cfg).table({ db: db.name, schema: 'public', table: 't' })], (m) => m.length >= 1));
    expect(seen).not.toBeNull();
    expect(seen!.rows).toEqual(['1', '2']);
    expect(seen!.consistentPoint).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(ev.map((e) => e.after)).toEqual([{ id: 3 }]);
  });
});

describe('postgres source: validate', () => {
  it('passes on a correctly configured server', async () => {
    const { cfg } = await setup('t_valid_ok', '');
    await expect(createPostgresSource(cfg.sources[0]!, cfg).validate()).resolves.toBeUndefined();
  });

  it('names each server setting to change, one line each', async () => {
    const { db, cfg: base } = await setup('t_valid_bad', `create table t (id int primary key)`);
    const role = uniq('r_cdc');
    await adminQuery(`create role ${role} login nosuperuser noreplication`);
    cleanups.push(async () => {
      await adminQuery(`drop owned by ${role}`).catch(() => undefined);
      await adminQuery(`drop role if exists ${role}`);
    });
    await db.q(`revoke create on database ${db.name} from public`);
    const foreignSlot = uniq('slot');
    await db.q(`select pg_create_logical_replication_slot($1, 'test_decoding')`, [foreignSlot]);
    cleanups.push(async () => void (await adminQuery(`select pg_drop_replication_slot($1)`, [foreignSlot]).catch(() => undefined)));
    await db.q(`create publication ${db.name}_owned for table t`);

    const url = new URL(db.url);
    url.username = role;
    const cfg = testConfig(db, {
      source: { url: url.toString() },
      postgres: { slot: foreignSlot, publication: `${db.name}_owned`, heartbeatIntervalMs: 1000 },
    });
    const err = await createPostgresSource(cfg.sources[0]!, cfg)
      .validate()
      .then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems;
    expect(problems.some((p) => p.includes(`role ${role} lacks the REPLICATION attribute: ALTER ROLE ${role} WITH REPLICATION`))).toBe(true);
    expect(problems.some((p) => p.includes(`replication slot ${foreignSlot} uses plugin test_decoding`))).toBe(true);
    expect(problems.some((p) => p.includes(`publication ${db.name}_owned is owned by postgres`))).toBe(true);
    expect(problems.some((p) => p.includes('heartbeat table public.cdc_heartbeat does not exist') && p.includes('heartbeatIntervalMs: 0'))).toBe(true);
    expect(problems.every((p) => !p.includes('\n'))).toBe(true);
    void base;

    // Same role, a publication it would have to create.
    const cfg2 = testConfig(db, { source: { url: url.toString() }, postgres: { slot: uniq('s'), publication: uniq('p') } });
    const err2 = (await createPostgresSource(cfg2.sources[0]!, cfg2).validate().catch((e: unknown) => e)) as ConfigError;
    expect(err2.problems.some((p) => p.includes(`GRANT CREATE ON DATABASE ${db.name} TO ${role}`))).toBe(true);
  });
});

describe('postgres source: replication origins', () => {
  it('reports the origin of transactions a replication process applied, and skips them with localOnly', async () => {
    const { db, cfg } = await setup('t_origin', `create table t (id int primary key)`);
    const local = testConfig(db, { source: { localOnly: true }, postgres: { slot: `${db.name}_local`, publication: db.name } });
    const origin = uniq('node');
    cleanups.push(async () => void (await adminQuery('select pg_replication_origin_drop($1)', [origin]).catch(() => undefined)));
    const all = captureSource(cfg);
    const mine = captureSource(local);
    cleanups.push(() => all.stop(), () => mine.stop());
    await until('both slots', async () => (await db.q(`select 1 from pg_replication_slots where database = $1 and active`, [db.name])).length === 2);

    await db.q(`insert into t values (1)`);
    const c = new pg.Client(db.url);
    await c.connect();
    await c.query('select pg_replication_origin_create($1)', [origin]);
    await c.query('select pg_replication_origin_session_setup($1)', [origin]);
    await c.query(`insert into t values (2)`); // as a sink applying another node's change would
    await c.query('select pg_replication_origin_session_reset()');
    await c.end();
    await db.q(`insert into t values (3)`);

    const events = (r: typeof all) => r.records.flatMap((x) => (x.type === 'change' ? [x.event] : []));
    await until('all three', async () => events(all).length >= 3 && events(mine).some((e) => e.after?.id === 3));
    expect(events(all).map((e) => [e.after?.id, e.source.origin])).toEqual([
      [1, 'pg'],
      [2, origin],
      [3, 'pg'],
    ]);
    expect(events(mine).map((e) => e.after?.id)).toEqual([1, 3]);
    expect(mine.records.filter((r) => r.type === 'transaction')).toHaveLength(4);
  });
});
