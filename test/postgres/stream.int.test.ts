// Row changes across several tables, TOAST, transaction metadata, heartbeats, schema changes and
// clean restarts, from the WAL to Kafka through the real runner and publisher.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PipelineConfig } from '../../config/schema.js';
import { parseLsn } from '../../connectors/postgres/lsn.js';
import { type ChangeEvent, type Row, type TransactionEvent, UNCHANGED } from '../../schemas/index.js';
import {

  type Running,
  type TestDb,
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

function byPosition(a: ChangeEvent, b: ChangeEvent): number {
  const pa = a.position as { commitLsn: string; seq: number };
  const pb = b.position as { commitLsn: string; seq: number };
  const d = parseLsn(pa.commitLsn) - parseLsn(pb.commitLsn);
  return d !== 0n ? (d < 0n ? -1 : 1) : pa.seq - pb.seq;
}

async function waitSlotActive(db: TestDb): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await db.q(`select 1 from pg_replication_slots where slot_name = $1 and active`, [db.name])).length > 0) return;
    await sleep(100);
  }
  throw new Error('slot never became active');
}

describe('postgres source: changes, transactions, TOAST, heartbeats, schema changes', () => {
  let db: TestDb;
  let cfg: PipelineConfig;
  let src: Running | undefined;
  const table = (t: string) => topicsOf(cfg).table({ db: db.name, schema: 'public', table: t });

  beforeAll(async () => {
    db = await createTestDb('t_stream');
    await db.q(`
      create table accounts (id int primary key, owner text, balance numeric(12,2));
      create table docs (k1 int, k2 text, body text, note text, primary key (k2, k1));
      alter table docs alter column body set storage external;
      create table audit (id bigserial primary key, body text, at timestamptz default now());
      alter table audit alter column body set storage external;
      alter table audit replica identity full;
    `);
    cfg = testConfig(db, { postgres: { heartbeatIntervalMs: 300 } });
    src = startSource(cfg);
    await waitSlotActive(db);
  });

  afterAll(async () => {
    await src?.stop();
    await dropTestDb(db);
    if (cfg) await deleteTopics(cfg.name);
  });

  it('streams inserts, updates, deletes and truncates of several tables in commit order, with transaction metadata', async () => {
    const big = 'B'.repeat(5000);
    await db.q(`insert into accounts values (1, 'ada', 10), (2, 'bob', 20), (3, 'cy', 30)`);
    await db.q(`begin;
      update accounts set balance = balance - 5 where id = 1;
      update accounts set balance = balance + 5 where id = 2;
      insert into docs values (1, 'a', '${big}', 'n1');
      insert into audit (body) values ('${big}');
      commit`);
    await db.q(`update docs set note = 'n2' where k1 = 1`); // body unchanged and TOASTed
    await db.q(`update audit set at = '2026-01-01 00:00:00+00'`); // REPLICA IDENTITY FULL: body resolved
    await db.q(`update accounts set id = 30 where id = 3`); // key change
    await db.q(`delete from accounts where id = 2`);
    await db.q(`truncate docs`);
    await db.q(`insert into accounts values (4, 'dee', 0.5)`);

    // 13 change records (+2 copies of the truncate, one per other partition, +1 tombstone) and 8 BEGIN/END pairs.
    const msgs = await collect([table('accounts'), table('docs'), table('audit'), topicsOf(cfg).transaction], (m) => m.length >= 13 + 2 + 1 + 16);
    const ev = (await changes(msgs.filter((m) => m.topic !== topicsOf(cfg).transaction))).sort(byPosition);
    expect(ev.map((e) => `${e.op}:${e.schema.id.table}`)).toEqual([
      'c:accounts', 'c:accounts', 'c:accounts',
      'u:accounts', 'u:accounts', 'c:docs', 'c:audit',
      'u:docs', 'u:audit', 'u:accounts', 'd:accounts', 't:docs', 'c:accounts',
    ]);
    const [, , , u1, , docIns, , docUpd, auditUpd, keyChange, del, trunc] = ev;
    expect(u1!.after).toEqual({ id: 1, owner: 'ada', balance: '5.00' });
    expect(u1!.before).toBeNull();
    expect(docIns!.after).toEqual({ k1: 1, k2: 'a', body: big, note: 'n1' });
    expect(docIns!.schema.primaryKey).toEqual(['k2', 'k1']);
    expect(docUpd!.after).toEqual({ k1: 1, k2: 'a', body: UNCHANGED, note: 'n2' });
    expect(auditUpd!.before).toMatchObject({ body: big });
    expect(auditUpd!.after).toMatchObject({ body: big, at: '2026-01-01T00:00:00Z' });
    expect(keyChange!.before).toEqual({ id: 3 });
    expect(keyChange!.after).toEqual({ id: 30, owner: 'cy', balance: '30.00' });
    expect(del!.before).toEqual({ id: 2 });
    expect(trunc!.before).toBeNull();

    // Kafka key = primary key, tombstone after the delete.
    const delMsgs = msgs.filter((m) => m.topic === table('accounts') && m.key?.toString() === '{"id":2}');
    expect(delMsgs.map((m) => (m.value === null ? 'tombstone' : JSON.parse(m.value.toString()).op))).toEqual(['c', 'u', 'd', 'tombstone']);

    // BEGIN/END around each transaction, with counts that match the events.
    const tx: TransactionEvent[] = [];
    for (const m of msgs.filter((x) => x.topic === topicsOf(cfg).transaction)) tx.push(await txEvent(m));
    const ends = tx.filter((t) => t.status === 'END');
    const multi = ends.find((t) => t.event_count === 4)!;
    expect(multi.data_collections).toEqual([
      { data_collection: `${db.name}.public.accounts`, event_count: 2 },
      { data_collection: `${db.name}.public.docs`, event_count: 1 },
      { data_collection: `${db.name}.public.audit`, event_count: 1 },
    ]);
    for (const end of ends) {
      const mine = ev.filter((e) => e.transaction?.id === end.id);
      expect(mine.length).toBe(end.event_count);
      expect(mine.map((e) => e.transaction!.total_order)).toEqual(mine.map((_, i) => i + 1));
    }
    expect(tx.map((t) => t.status).join(',')).toMatch(/^(BEGIN,END,?)+$/);

    // Applying the events reproduces the source table.
    const replica = new Map<string, Row>();
    for (const e of ev.filter((x) => x.schema.id.table === 'accounts')) {
      if (e.op === 'd' || (e.op === 'u' && e.before)) replica.delete(String((e.before as Row).id));
      if (e.after) replica.set(String(e.after.id), e.after);
    }
    const rows = await db.q(`select id, owner, balance from accounts order by id`);
    expect([...replica.values()].sort((a, b) => Number(a.id) - Number(b.id))).toEqual(rows.map((r) => ({ id: Number(r.id), owner: r.owner, balance: r.balance })));
  });

  it('publishes heartbeats and moves the slot while captured tables are idle', async () => {
    const before = (await db.q(`select confirmed_flush_lsn::text as l from pg_replication_slots where slot_name = $1`, [db.name]))[0]!.l!;
    const hb = await collect([topicsOf(cfg).heartbeat], (m) => m.length >= 3, 30_000);
    const last = JSON.parse(hb.at(-1)!.value!.toString()) as { ts_ms: number; position: { lsn: string } };
    expect(last.position.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    await sleep(1500);
    const after = (await db.q(`select confirmed_flush_lsn::text as l from pg_replication_slots where slot_name = $1`, [db.name]))[0]!.l!;
    expect(parseLsn(after) > parseLsn(before)).toBe(true);
  });

  it('resumes from the slot after a clean stop, without gaps or repeats, and keeps old shapes across ALTER TABLE', async () => {
    await src!.stop();
    src = undefined;
    const confirmed = (await db.q(`select confirmed_flush_lsn::text as l from pg_replication_slots where slot_name = $1`, [db.name]))[0]!.l!;
    // Written while the connector is down: decoded later, each with the shape it had when written.
    await db.q(`insert into accounts values (100, 'before-alter', 1)`);
    await db.q(`alter table accounts add column tier text default 'gold'`);
    await db.q(`insert into accounts values (101, 'after-add', 2, 'silver')`);
    await db.q(`alter table accounts drop column owner`);
    await db.q(`insert into accounts values (102, 3, 'bronze')`);
    await db.q(`alter table accounts alter column balance type numeric(20,4)`);
    await db.q(`insert into accounts values (103, 4.1234, 'iron')`);

    src = startSource(cfg);
    const wanted = ['"before-alter"', '"after-add"', '"bronze"', '"iron"'];
    const msgs = await collect([table('accounts')], (m) => wanted.every((w) => m.some((x) => x.value?.toString().includes(w))));
    const ev = (await changes(msgs)).sort(byPosition);
    const fresh = ev.filter((e) => parseLsn(e.source.commit_lsn!) >= parseLsn(confirmed));
    expect(fresh.map((e) => e.after?.id)).toEqual([100, 101, 102, 103]);
    // Nothing from before the stop came again.
    const ids = ev.map((e) => JSON.stringify(e.position));
    expect(new Set(ids).size).toBe(ids.length);

    const cols = (e: ChangeEvent) => e.schema.columns.map((c) => `${c.name}:${c.sourceType}`);
    expect(cols(fresh[0]!)).toEqual(['id:integer', 'owner:text', 'balance:numeric(12,2)']);
    expect(fresh[0]!.after).toEqual({ id: 100, owner: 'before-alter', balance: '1.00' });
    expect(cols(fresh[1]!)).toEqual(['id:integer', 'owner:text', 'balance:numeric(12,2)', 'tier:text']);
    expect(fresh[1]!.after).toEqual({ id: 101, owner: 'after-add', balance: '2.00', tier: 'silver' });
    expect(cols(fresh[2]!)).toEqual(['id:integer', 'balance:numeric(12,2)', 'tier:text']);
    expect(fresh[2]!.after).toEqual({ id: 102, balance: '3.00', tier: 'bronze' });
    expect(cols(fresh[3]!)).toEqual(['id:integer', 'balance:numeric(20,4)', 'tier:text']);
    expect(fresh[3]!.after).toEqual({ id: 103, balance: '4.1234', tier: 'iron' });
  });
});

