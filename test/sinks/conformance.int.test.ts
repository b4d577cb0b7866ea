import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UNCHANGED } from '../../schemas/column-types.js';
import type { TableSchema } from '../../schemas/table-schema.js';
import { OffsetFenceError, OldRowPendingError } from '../../sinks/errors.js';
import type { Sink, SinkChange } from '../../sinks/sink.js';
import { uniq } from '../helpers.js';
import { applyAll, collectingHooks, EventFactory, openSink, type Replica, replicaOf, sinkCfg } from './support.js';
import { mulberry32 } from '../prng.js';

/**
 * One conformance suite, run against both replica dialects (bullmq's setConnectionFactory idea):
 * the same changes must leave the same rows in a PostgreSQL and in a MariaDB replica.
 */

function accounts(db: string, table = 'accounts', dialect: 'postgres' | 'mysql' = 'postgres'): TableSchema {
  return {
    id: { db, schema: dialect === 'postgres' ? 'public' : null, table },
    dialect,
    primaryKey: ['id'],
    columns: [
      { name: 'id', type: { kind: 'int', bits: 64 }, nullable: false, sourceType: 'bigint' },
      { name: 'name', type: { kind: 'string', length: 40 }, nullable: true, sourceType: dialect === 'postgres' ? 'character varying(40)' : 'varchar(40)' },
      { name: 'balance', type: { kind: 'decimal', precision: 12, scale: 2 }, nullable: true, sourceType: dialect === 'postgres' ? 'numeric(12,2)' : 'decimal(12,2)' },
      { name: 'doc', type: { kind: 'string' }, nullable: true, sourceType: dialect === 'postgres' ? 'text' : 'longtext' },
    ],
  };
}

describe.each(['postgres', 'mysql'] as const)('sink conformance: %s replica', (kind) => {
  let replica: Replica;
  const sinks: Sink[] = [];
  const db = uniq('src');
  const meta = uniq('meta');
  /** Where a source table of database `db` lands on the replica. */
  const target = (schema: TableSchema) => (kind === 'postgres' ? (schema.id.schema ?? schema.id.db) : schema.id.db);

  /** A started sink (start creates the bookkeeping tables; every test can run alone). */
  const open = async (over: Record<string, unknown> = {}, statementRows?: number) => {
    const sink = openSink(sinkCfg(replica.url, { metaSchema: meta, ...over }), statementRows);
    sinks.push(sink);
    await sink.start();
    return sink;
  };

  beforeAll(async () => {
    replica = await replicaOf(kind);
    replica.track(db);
    replica.track(meta);
  });
  afterAll(async () => {
    for (const s of sinks) await s.close();
    await replica?.drop();
  });

  it('creates the table and applies a mixed batch (updates, key change, deletes) as if one by one', async () => {
    const sink = await open({}, 2);
    const f = new EventFactory(accounts(db, 'mixed'));
    const r = await applyAll(sink, [
      f.c({ id: '1', name: 'ada', balance: '10.00', doc: 'a' }),
      f.c({ id: '2', name: 'bob', balance: '20.50', doc: 'b' }),
      f.c({ id: '3', name: 'cy', balance: '0.00', doc: 'c' }),
      f.u({ id: '1' }, { id: '1', name: 'ada2', balance: '11.00', doc: 'a' }),
      f.d({ id: '2' }),
      f.u({ id: '3' }, { id: '30', name: 'cy', balance: '1.00', doc: 'c' }),
      f.c({ id: '5', name: 'eve', balance: '-5.25', doc: null }),
      f.c({ id: '2', name: 'bob again', balance: '1.00', doc: null }),
    ]);
    expect(r.dead).toEqual([]);
    expect(await replica.rows(target(f.schema), 'mixed', ['id'])).toEqual([
      { id: '1', name: 'ada2', balance: '11.00', doc: 'a' },
      { id: '2', name: 'bob again', balance: '1.00', doc: null },
      { id: '5', name: 'eve', balance: '-5.25', doc: null },
      { id: '30', name: 'cy', balance: '1.00', doc: 'c' },
    ]);
  });

  it('out-of-order and duplicate delivery converge to the in-order state (lww)', async () => {
    const rand = mulberry32(1234);
    const schemaA = accounts(db, 'converge');
    const f = new EventFactory(schemaA);
    // A random history over a few keys: inserts, updates, key changes, deletes, re-inserts, one truncate.
    const live = new Map<string, string>();
    const history: SinkChange[] = [];
    let nextId = 1;
    for (let i = 0; i < 300; i++) {
      const roll = rand();
      const keys = [...live.keys()];
      const pick = keys[Math.floor(rand() * keys.length)];
      if (i === 150) {
        history.push(f.t());
        live.clear();
      } else if (pick === undefined || roll < 0.3) {
        const id = String(nextId++ % 40);
        if (live.has(id)) continue;
        const name = `n${i}`;
        live.set(id, name);
        history.push(f.c({ id, name, balance: `${i}.00`, doc: `d${i}` }));
      } else if (roll < 0.65) {
        const name = `u${i}`;
        live.set(pick, name);
        history.push(f.u({ id: pick }, { id: pick, name, balance: `${i}.50`, doc: `d${i}` }));
      } else if (roll < 0.8) {
        const id = String(100 + (nextId++ % 40));
        if (live.has(id)) continue;
        live.delete(pick);
        live.set(id, 'moved');
        history.push(f.u({ id: pick }, { id, name: `moved${i}`, balance: '1.00', doc: null }));
      } else {
        live.delete(pick);
        history.push(f.d({ id: pick }));
      }
    }
    const tA = kind === 'postgres' ? 'inorder' : uniq('inorder');
    const tB = kind === 'postgres' ? 'shuffled' : uniq('shuffled');
    replica.track(tA);
    replica.track(tB);
    const inOrder = await open({ targetSchema: tA });
    const shuffled = await open({ targetSchema: tB });
    // in order, in batches of 7
    for (let i = 0; i < history.length; i += 7) expect((await applyAll(inOrder, history.slice(i, i + 7))).dead).toEqual([]);
    // shuffled, with every change delivered twice, in random batch sizes
    const deliveries = [...history, ...history.filter(() => rand() < 0.5)];
    for (let i = deliveries.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [deliveries[i], deliveries[j]] = [deliveries[j]!, deliveries[i]!];
    }
    for (let i = 0; i < deliveries.length; ) {
      const n = 1 + Math.floor(rand() * 20);
      expect((await applyAll(shuffled, deliveries.slice(i, i + n))).dead).toEqual([]);
      i += n;
    }
    const a = await replica.rows(tA, 'converge', ['id'], { withVersions: true });
    const b = await replica.rows(tB, 'converge', ['id'], { withVersions: true });
    expect(a.length).toBeGreaterThan(5);
    expect(b).toEqual(a);
    // and the in-order replica holds exactly the live keys of the history
    expect(a.map((r) => r.id).sort()).toEqual([...live.keys()].sort());
  });

  it('refuses an older version arriving after a newer one, and logs the conflict', async () => {
    const sink = await open();
    const f = new EventFactory(accounts(db, 'older'));
    await applyAll(sink, [f.c({ id: '1', name: 'v1', balance: '1.00', doc: null }, { tsUs: 1000n })]);
    await applyAll(sink, [f.u({ id: '1' }, { id: '1', name: 'v3', balance: '3.00', doc: null }, { tsUs: 3000n })]);
    const late = await applyAll(sink, [f.u({ id: '1' }, { id: '1', name: 'v2', balance: '2.00', doc: null }, { tsUs: 2000n })]);
    expect(late.conflicts).toBe(1);
    expect(await replica.rows(target(f.schema), 'older', ['id'])).toEqual([{ id: '1', name: 'v3', balance: '3.00', doc: null }]);
    const logged = await replica.query(
      kind === 'postgres'
        ? `SELECT kind, resolution, local_ts::text AS local_ts, remote_ts::text AS remote_ts, local_row FROM "${meta}".conflicts WHERE tbl LIKE '%older%'`
        : `SELECT kind, resolution, CAST(local_ts AS CHAR) AS local_ts, CAST(remote_ts AS CHAR) AS remote_ts, local_row FROM \`${meta}\`.conflicts WHERE tbl LIKE '%older%'`,
    );
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ kind: 'older', resolution: 'kept-local', local_ts: '3000', remote_ts: '2000' });
    expect(String(logged[0]!.local_row)).toContain('v3');
  });

  it('ties on the commit timestamp: origin id first, then log order within one origin', async () => {
    const sink = await open();
    const f = new EventFactory(accounts(db, 'ties'));
    const a = f.u({ id: '1' }, { id: '1', name: 'from-a', balance: '1.00', doc: null }, { tsUs: 5000n, origin: 'a' });
    const b = f.u({ id: '1' }, { id: '1', name: 'from-b', balance: '2.00', doc: null }, { tsUs: 5000n, origin: 'b' });
    await applyAll(sink, [b]);
    await applyAll(sink, [a]);
    expect((await replica.rows(target(f.schema), 'ties', ['id']))[0]?.name).toBe('from-b');
    // same origin, same timestamp (one transaction): the later change in the log wins, whatever the arrival order
    const first = f.u({ id: '2' }, { id: '2', name: 'first', balance: '1.00', doc: null }, { tsUs: 7000n });
    const second = f.u({ id: '2' }, { id: '2', name: 'second', balance: '1.00', doc: null }, { tsUs: 7000n });
    await applyAll(sink, [second]);
    await applyAll(sink, [first]);
    expect((await replica.rows(target(f.schema), 'ties', ['id']))[1]?.name).toBe('second');
  });

  it('an insert arriving after the delete that followed it does not resurrect the row', async () => {
    const sink = await open();
    const f = new EventFactory(accounts(db, 'tomb'));
    const ins = f.c({ id: '7', name: 'x', balance: '1.00', doc: null }, { tsUs: 1000n });
    const del = f.d({ id: '7' }, { tsUs: 2000n });
    await applyAll(sink, [del]);
    const late = await applyAll(sink, [ins]);
    expect(late.conflicts).toBe(1);
    expect(await replica.rows(target(f.schema), 'tomb', ['id'])).toEqual([]);
    // a newer insert does come back, and clears the tombstone
    await applyAll(sink, [f.c({ id: '7', name: 'again', balance: '2.00', doc: null }, { tsUs: 3000n })]);
    expect(await replica.rows(target(f.schema), 'tomb', ['id'])).toEqual([{ id: '7', name: 'again', balance: '2.00', doc: null }]);
    const t = await replica.query(kind === 'postgres' ? `SELECT count(*)::int AS n FROM "${meta}".tombstones WHERE tbl LIKE '%tomb%'` : `SELECT count(*) AS n FROM \`${meta}\`.tombstones WHERE tbl LIKE '%tomb%'`);
    expect(Number(t[0]!.n)).toBe(0);
  });

  it('stores offsets with the rows, fences a stale worker, and a replayed batch changes nothing', async () => {
    const sink = await open();
    const f = new EventFactory(accounts(db, 'offsets'), { topic: 'tp.offsets' });
    const batch = [f.c({ id: '1', name: 'a', balance: '1.00', doc: null }), f.c({ id: '2', name: 'b', balance: '2.00', doc: null })];
    await applyAll(sink, batch, [{ topic: 'tp.offsets', partition: 0, expected: null, next: '2' }]);
    expect(await sink.storedOffsets([{ topic: 'tp.offsets', partition: 0 }])).toEqual(new Map([['tp.offsets\u00000', '2']]));
    // the same batch again with the stale expectation: refused, nothing written
    await expect(applyAll(sink, [f.u({ id: '1' }, { id: '1', name: 'zombie', balance: '9.00', doc: null })], [{ topic: 'tp.offsets', partition: 0, expected: null, next: '3' }])).rejects.toBeInstanceOf(
      OffsetFenceError,
    );
    await expect(applyAll(sink, batch, [{ topic: 'tp.offsets', partition: 0, expected: '1', next: '2' }])).rejects.toBeInstanceOf(OffsetFenceError);
    // replaying the records themselves (same versions) is a no-op
    const again = await applyAll(sink, batch, [{ topic: 'tp.offsets', partition: 0, expected: '2', next: '4' }]);
    expect(again.written).toBe(0);
    expect(await replica.rows(target(f.schema), 'offsets', ['id'])).toEqual([
      { id: '1', name: 'a', balance: '1.00', doc: null },
      { id: '2', name: 'b', balance: '2.00', doc: null },
    ]);
    expect((await sink.storedOffsets([{ topic: 'tp.offsets', partition: 0 }])).get('tp.offsets\u00000')).toBe('4');
  });

  it('keeps the replica value for an unchanged-TOAST placeholder, also across a key change', async () => {
    const sink = await open();
    const f = new EventFactory(accounts(db, 'toast'));
    const big = 'x'.repeat(5000);
    await applyAll(sink, [f.c({ id: '1', name: 'a', balance: '1.00', doc: big })]);
    await applyAll(sink, [f.u({ id: '1' }, { id: '1', name: 'b', balance: '2.00', doc: UNCHANGED })]);
    let rows = await replica.rows(target(f.schema), 'toast', ['id']);
    expect(rows).toEqual([{ id: '1', name: 'b', balance: '2.00', doc: big }]);
    // key change with the TOASTed column unchanged: the value moves with the row
    await applyAll(sink, [f.u({ id: '1' }, { id: '9', name: 'c', balance: '3.00', doc: UNCHANGED })]);
    rows = await replica.rows(target(f.schema), 'toast', ['id']);
    expect(rows).toEqual([{ id: '9', name: 'c', balance: '3.00', doc: big }]);
    // placeholder merged within one batch
    await applyAll(sink, [f.c({ id: '2', name: 'n', balance: '1.00', doc: 'small' }), f.u({ id: '2' }, { id: '2', name: 'm', balance: '1.00', doc: UNCHANGED })]);
    expect((await replica.rows(target(f.schema), 'toast', ['id']))[0]).toEqual({ id: '2', name: 'm', balance: '1.00', doc: 'small' });
  });

  it('key mode: a key change whose old row is still in another partition is refused until that row is there', async () => {
    const sink = await open();
    const f = new EventFactory(accounts(db, 'late_old'));
    const big = 'z'.repeat(5000);
    // One source transaction: insert, then key change with the TOASTed column unchanged. The
    // insert is in the old key's partition, the key change in the new key's.
    const insert = f.c({ id: '1', name: 'a', balance: '1.00', doc: big }, { txId: '7' });
    const keyChange = f.u({ id: '1' }, { id: '2', name: 'b', balance: '2.00', doc: UNCHANGED }, { txId: '7' });
    const hooks = collectingHooks();
    await expect(sink.apply({ changes: [keyChange], offsets: [], waitForOldRows: true }, hooks)).rejects.toBeInstanceOf(OldRowPendingError);
    expect(await replica.rows(target(f.schema), 'late_old', ['id'])).toEqual([]);
    await applyAll(sink, [insert]);
    await sink.apply({ changes: [keyChange], offsets: [], waitForOldRows: true }, hooks);
    expect(await replica.rows(target(f.schema), 'late_old', ['id'])).toEqual([{ id: '2', name: 'b', balance: '2.00', doc: big }]);
    // Replayed: the newer delete of the old key says the row already moved; nothing waits.
    await sink.apply({ changes: [keyChange], offsets: [], waitForOldRows: true }, hooks);
    // Two key changes of the row in one batch: the columns come from the row under the first old key.
    await sink.apply({ changes: [f.u({ id: '2' }, { id: '3', name: 'b', balance: '2.00', doc: UNCHANGED }), f.u({ id: '3' }, { id: '4', name: 'b', balance: '2.00', doc: UNCHANGED })], offsets: [], waitForOldRows: true }, hooks);
    expect(await replica.rows(target(f.schema), 'late_old', ['id'])).toEqual([{ id: '4', name: 'b', balance: '2.00', doc: big }]);

    // An old row that never comes, once the consumer stops waiting: written without it.
    await applyAll(sink, [f.u({ id: '5' }, { id: '6', name: 'c', balance: '3.00', doc: UNCHANGED })]);
    expect(await replica.rows(target(f.schema), 'late_old', ['id'])).toEqual([
      { id: '4', name: 'b', balance: '2.00', doc: big },
      { id: '6', name: 'c', balance: '3.00', doc: null },
    ]);
    expect(hooks.dead).toEqual([]);
  });

  it('truncate removes older rows, refuses older rows arriving late, keeps newer ones', async () => {
    const sink = await open();
    const f = new EventFactory(accounts(db, 'trunc'));
    const before = f.c({ id: '1', name: 'old', balance: '1.00', doc: null }, { tsUs: 1000n });
    const lateOld = f.c({ id: '2', name: 'late-old', balance: '1.00', doc: null }, { tsUs: 1500n });
    const trunc = f.t({ tsUs: 2000n });
    const after = f.c({ id: '3', name: 'new', balance: '1.00', doc: null }, { tsUs: 3000n });
    await applyAll(sink, [before]);
    await applyAll(sink, [after]); // another partition is ahead of the truncate
    await applyAll(sink, [trunc]);
    await applyAll(sink, [lateOld, trunc]); // a lagging partition: its older row, then its copy of the truncate
    expect(await replica.rows(target(f.schema), 'trunc', ['id'])).toEqual([{ id: '3', name: 'new', balance: '1.00', doc: null }]);
  });

  it('sends poison changes to the dead letters and applies the rest of the batch', async () => {
    const sink = await open();
    const f = new EventFactory(accounts(db, 'poison'));
    const bad = f.c({ id: '2', name: 'bad', balance: 'not-a-number', doc: null });
    const tooLong = f.c({ id: '3', name: 'y'.repeat(41), balance: '1.00', doc: null });
    const r = await applyAll(sink, [f.c({ id: '1', name: 'ok', balance: '1.00', doc: null }), bad, tooLong, f.c({ id: '4', name: 'ok2', balance: '2.00', doc: null })]);
    expect(r.dead.map((x) => x.ref.offset).sort()).toEqual([bad.ref.offset, tooLong.ref.offset].sort());
    for (const x of r.dead) expect(x.reason.length).toBeGreaterThan(5);
    expect((await replica.rows(target(f.schema), 'poison', ['id'])).map((x) => x.id)).toEqual(['1', '4']);
  });

  it('replicates a table and columns whose names hold quotes, backticks, semicolons and spaces', async () => {
    const sink = await open();
    const weird = 'we"ird`;tab le';
    const col = 'co"l`; x';
    const schema: TableSchema = {
      id: { db, schema: kind === 'postgres' ? 'public' : null, table: weird },
      dialect: 'postgres',
      primaryKey: [col],
      columns: [
        { name: col, type: { kind: 'int', bits: 32 }, nullable: false, sourceType: 'integer' },
        { name: "v'); DROP TABLE x; --", type: { kind: 'string' }, nullable: true, sourceType: 'text' },
      ],
    };
    const f = new EventFactory(schema);
    const r = await applyAll(sink, [f.c({ [col]: 1, "v'); DROP TABLE x; --": 'a' }), f.c({ [col]: 2, "v'); DROP TABLE x; --": "b'; --" }), f.d({ [col]: 1 })]);
    expect(r.dead).toEqual([]);
    expect(await replica.rows(target(schema), weird, [col])).toEqual([{ [col]: '2', "v'); DROP TABLE x; --": "b'; --" }]);
  });

  it('a name the replica cannot hold is dead-lettered with the reason, not fatal', async () => {
    const sink = await open();
    const f = new EventFactory({ ...accounts(db, `${'l'.repeat(70)}`) });
    const r = await applyAll(sink, [f.c({ id: '1', name: 'a', balance: '1.00', doc: null })]);
    expect(r.dead).toHaveLength(1);
    expect(r.dead[0]!.reason).toMatch(/long/);
  });

  it('follows schema changes: add column (with default), widen types, drop column per dropColumns', async () => {
    for (const dropColumns of ['keep', 'drop'] as const) {
      const sink = await open({ dropColumns });
      const table = `evolve_${dropColumns}`;
      const v1: TableSchema = {
        id: { db, schema: kind === 'postgres' ? 'public' : null, table },
        dialect: 'postgres',
        primaryKey: ['id'],
        columns: [
          { name: 'id', type: { kind: 'int', bits: 32 }, nullable: false, sourceType: 'integer' },
          { name: 'n', type: { kind: 'int', bits: 32 }, nullable: false, sourceType: 'integer' },
          { name: 'code', type: { kind: 'string', length: 3 }, nullable: true, sourceType: 'character varying(3)' },
          { name: 'legacy', type: { kind: 'string' }, nullable: false, sourceType: 'text' },
        ],
      };
      const v2: TableSchema = {
        ...v1,
        columns: [
          { name: 'id', type: { kind: 'int', bits: 32 }, nullable: false, sourceType: 'integer' },
          { name: 'n', type: { kind: 'int', bits: 64 }, nullable: false, sourceType: 'bigint' },
          { name: 'code', type: { kind: 'string', length: 10 }, nullable: true, sourceType: 'character varying(10)' },
          { name: 'added', type: { kind: 'int', bits: 32 }, nullable: false, sourceType: 'integer', defaultExpr: '42' },
        ],
      };
      const f = new EventFactory(v1);
      await applyAll(sink, [f.c({ id: 1, n: 1, code: 'abc', legacy: 'l1' })]);
      const r = await applyAll(sink, [f.c({ id: 2, n: 2, code: 'def', legacy: 'l2' }), f.change(f.event('c', null, { id: 3, n: '9000000000', code: 'abcdefghij', added: 7 }, { schema: v2 }))]);
      expect(r.dead).toEqual([]);
      const rows = await replica.rows(target(v1), table, ['id']);
      const expected = [
        { id: '1', n: '1', code: 'abc', legacy: 'l1', added: '42' },
        { id: '2', n: '2', code: 'def', legacy: 'l2', added: '42' },
        { id: '3', n: '9000000000', code: 'abcdefghij', legacy: null, added: '7' },
      ];
      expect(rows).toEqual(dropColumns === 'keep' ? expected : expected.map(({ legacy: _legacy, ...rest }) => rest));
    }
  });

  it('applies keyless tables in order (insert, update, delete, truncate)', async () => {
    const sink = await open();
    const schema: TableSchema = {
      id: { db, schema: kind === 'postgres' ? 'public' : null, table: 'keyless' },
      dialect: 'postgres',
      primaryKey: [],
      columns: [
        { name: 'a', type: { kind: 'int', bits: 32 }, nullable: true, sourceType: 'integer' },
        { name: 'b', type: { kind: 'string' }, nullable: true, sourceType: 'text' },
      ],
    };
    const f = new EventFactory(schema);
    await applyAll(sink, [f.c({ a: 1, b: 'x' }), f.c({ a: 1, b: 'x' }), f.c({ a: 2, b: null }), f.u({ a: 1, b: 'x' }, { a: 1, b: 'y' }), f.d({ a: 2, b: null })]);
    expect(await replica.rows(target(schema), 'keyless', ['a', 'b'])).toEqual([
      { a: '1', b: 'x' },
      { a: '1', b: 'y' },
    ]);
    await applyAll(sink, [f.t(), f.c({ a: 3, b: 'z' })]);
    expect(await replica.rows(target(schema), 'keyless', ['a'])).toEqual([{ a: '3', b: 'z' }]);
  });

  it('applies a transaction in chunks atomically, and a rollback leaves nothing', async () => {
    const sink = await open();
    const f = new EventFactory(accounts(db, 'chunks'), { topic: 'tp.chunks' });
    const g = new EventFactory(accounts(db, 'chunks_b'), { topic: 'tp.chunks' });
    const tx = await sink.begin(collectingHooks());
    await tx.apply([f.c({ id: '1', name: 'a', balance: '1.00', doc: null })]);
    // a second chunk that needs a new table: its DDL must not commit the open transaction (MySQL)
    await tx.apply([g.c({ id: '9', name: 'z', balance: '1.00', doc: null }), f.c({ id: '2', name: 'b', balance: '1.00', doc: null })]);
    // a concurrent reader sees nothing yet
    expect(await replica.rows(target(f.schema), 'chunks', ['id'])).toEqual([]);
    await tx.commit([{ topic: 'tp.chunks', partition: 0, expected: null, next: '2' }]);
    expect((await replica.rows(target(f.schema), 'chunks', ['id'])).map((r) => r.id)).toEqual(['1', '2']);
    expect((await replica.rows(target(f.schema), 'chunks_b', ['id'])).map((r) => r.id)).toEqual(['9']);
    const tx2 = await sink.begin(collectingHooks());
    await tx2.apply([f.c({ id: '3', name: 'c', balance: '1.00', doc: null })]);
    await tx2.rollback();
    expect((await replica.rows(target(f.schema), 'chunks', ['id'])).map((r) => r.id)).toEqual(['1', '2']);
  });

  it('grants a named lease to one holder at a time', async () => {
    const a = await open();
    const b = await open();
    const name = uniq('lease');
    const lease = await a.tryLease(name);
    expect(lease).not.toBeNull();
    expect(await b.tryLease(name)).toBeNull();
    await lease!.release();
    const again = await b.tryLease(name);
    expect(again).not.toBeNull();
    await again!.release();
  });
});
