// ALTER TABLE ADD/DROP/MODIFY COLUMN mid-stream, then a restart that replays the events written
// before the ALTERs: every event decodes with its own columns, and what the binlog does not say
// (MariaDB's JSON columns, exact type text) comes from the schema history as it was then, not from
// the table as it is now.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChangeEvent } from '../../schemas/change-event.js';
import { encodePosition } from '../../schemas/position.js';
import { type Running, type TestDb, changeOf, collect, createTestDb, deleteTopics, dropTestDb, kafka, offsetsTopic, readAll, startSource, storedCheckpoints, testConfig, topicsOf } from './harness.js';

describe('mysql source: schema changes and replay', () => {
  let db: TestDb;
  let run: Running | undefined;
  let prefix: string | undefined;

  beforeAll(async () => {
    db = await createTestDb('t_myhist');
    await db.q('CREATE TABLE docs (id INT NOT NULL PRIMARY KEY, a INT, j JSON)');
  });
  afterAll(async () => {
    await run?.stop();
    await dropTestDb(db);
    if (prefix) await deleteTopics(prefix);
  });

  it('decodes every event with the columns it was written with, also when replayed after the ALTERs', async () => {
    const cfg = testConfig([db.name]);
    prefix = cfg.name;
    const topic = topicsOf(cfg).table({ db: db.name, schema: null, table: 'docs' });
    const historyTopic = `${topicsOf(cfg).prefix}.schema-history`;
    run = startSource(cfg);
    const [start] = await collect([offsetsTopic(cfg)], (m) => m.length > 0);
    const p0 = start!.value!.toString();

    // Live: each DDL is read while it is the newest one (the next statement waits for the event).
    const seen = async (n: number) => collect([topic], (m) => m.length >= n);
    await db.q(`INSERT INTO docs VALUES (1, 10, '{"v": 1}')`);
    await seen(1);
    await db.q(`ALTER TABLE docs ADD COLUMN b VARCHAR(10) DEFAULT 'x'`);
    await db.q(`INSERT INTO docs VALUES (2, 20, '{"v": 2}', 'bee')`);
    await seen(2);
    await db.q('ALTER TABLE docs DROP COLUMN a');
    await db.q(`INSERT INTO docs VALUES (3, '{"v": 3}', 'c')`);
    await seen(3);
    await db.q('ALTER TABLE docs MODIFY COLUMN j LONGTEXT');
    await db.q(`INSERT INTO docs VALUES (4, 'not json', 'd')`);
    await seen(4);
    await db.q('ALTER TABLE docs MODIFY COLUMN b VARCHAR(20)');
    await db.q(`UPDATE docs SET b = 'u' WHERE id = 1`);

    const first = (await collect([topic], (m) => m.length >= 5)).map((m) => changeOf(m)!);
    const byId = (evs: ChangeEvent[], id: number, op = 'c') => evs.find((e) => e.op === op && (e.after ?? e.before)!.id === id)!;
    const cols = (e: ChangeEvent) => e.schema.columns.map((c) => `${c.name}:${c.type.kind}:${c.sourceType}`);

    expect(byId(first, 1).after).toEqual({ id: 1, a: 10, j: '{"v": 1}' });
    expect(cols(byId(first, 1))).toEqual(['id:int:int(11)', 'a:int:int(11)', 'j:json:json']);
    expect(byId(first, 2).after).toEqual({ id: 2, a: 20, j: '{"v": 2}', b: 'bee' });
    expect(cols(byId(first, 2))).toEqual(['id:int:int(11)', 'a:int:int(11)', 'j:json:json', 'b:string:varchar(10)']);
    expect(byId(first, 3).after).toEqual({ id: 3, j: '{"v": 3}', b: 'c' });
    expect(cols(byId(first, 3))).toEqual(['id:int:int(11)', 'j:json:json', 'b:string:varchar(10)']);
    expect(byId(first, 4).after).toEqual({ id: 4, j: 'not json', b: 'd' });
    expect(cols(byId(first, 4))).toEqual(['id:int:int(11)', 'j:string:longtext', 'b:string:varchar(10)']);
    const upd = byId(first, 1, 'u');
    expect(upd.before).toEqual({ id: 1, j: '{"v": 1}', b: 'x' });
    expect(upd.after).toEqual({ id: 1, j: '{"v": 1}', b: 'u' });
    expect(cols(upd)).toEqual(['id:int:int(11)', 'j:string:longtext', 'b:string:varchar(20)']);
    expect(byId(first, 2).schema.columns.find((c) => c.name === 'b')!.defaultExpr).toBe("'x'");

    // Catching up: DDLs and rows written while the connector is down. Every definition it reads
    // then is the final one; the TABLE_MAPs and the older history entries still say what each
    // row had (j is JSON again for rows 6 and 7, plain LONGTEXT for row 8; c exists from row 7).
    await run.stop();
    await db.q(`UPDATE docs SET j = '"not json"' WHERE id = 4`);
    await db.q('ALTER TABLE docs MODIFY COLUMN j JSON');
    await db.q(`INSERT INTO docs VALUES (6, '{"x": 6}', 'f')`);
    await db.q('ALTER TABLE docs ADD COLUMN c INT DEFAULT 3');
    await db.q(`INSERT INTO docs VALUES (7, '{}', 'g', 8)`);
    await db.q('ALTER TABLE docs MODIFY COLUMN j LONGTEXT');
    await db.q(`INSERT INTO docs VALUES (8, 'plain', 'h', 9)`);
    run = startSource(cfg);
    const caught = (await collect([topic], (m) => m.length >= 9, 60_000)).map((m) => changeOf(m)!);
    expect(cols(byId(caught, 6))).toEqual(['id:int:int(11)', 'j:json:json', 'b:string:varchar(20)']);
    expect(cols(byId(caught, 7))).toEqual(['id:int:int(11)', 'j:json:json', 'b:string:varchar(20)', 'c:int:int(11)']);
    expect(byId(caught, 7).schema.columns.find((c) => c.name === 'c')!.defaultExpr).toBe('3');
    expect(cols(byId(caught, 8))).toEqual(['id:int:int(11)', 'j:string:longtext', 'b:string:varchar(20)', 'c:int:int(11)']);
    expect(byId(caught, 8).after).toEqual({ id: 8, j: 'plain', b: 'h', c: 9 });
    first.push(...caught.slice(5));

    await run.stop();
    run = undefined;
    const historyBefore = await readAll([historyTopic]);
    expect(historyBefore.map((m) => JSON.parse(m.value!.toString()).kind)).toEqual(['snapshot', ...new Array(7).fill('ddl')]);

    // Rewind: store the very first checkpoint again, so the next run replays every event above.
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: offsetsTopic(cfg), acks: -1, messages: [{ key: 'my', value: p0 }] });
    await producer.disconnect();
    const cps = await storedCheckpoints(cfg);
    expect(encodePosition(cps.at(-1)!)).toBe(p0);

    run = startSource(cfg);
    const all = (await collect([topic], (m) => m.length >= 18, 90_000)).map((m) => changeOf(m)!);
    const replayed = all.slice(9);
    // Same events, same values, same schemas, same positions: duplicates a consumer can drop by position.
    const key = (e: ChangeEvent) => JSON.stringify(e.position);
    const firstByPos = new Map(first.map((e) => [key(e), e]));
    for (const e of replayed) {
      const orig = firstByPos.get(key(e));
      expect(orig, `replayed event at ${key(e)} was published before`).toBeDefined();
      expect(e.after).toEqual(orig!.after);
      expect(e.before).toEqual(orig!.before);
      expect(e.schema).toEqual(orig!.schema);
    }
    expect(new Set(replayed.map(key)).size).toBe(9);
    // The replay used the recorded history, not today's table (where j is a plain LONGTEXT).
    expect(cols(byId(replayed, 1))).toEqual(['id:int:int(11)', 'a:int:int(11)', 'j:json:json']);
    // ...and did not record the DDLs a second time.
    const historyAfter = await readAll([historyTopic]);
    expect(historyAfter).toHaveLength(historyBefore.length);

    // A plain restart resumes after the last checkpoint: only new events follow.
    await eventuallyStored(cfg, p0);
    await run.stop();
    run = startSource(cfg);
    await db.q(`INSERT INTO docs VALUES (5, '[]', 'e', 1)`);
    const after = (await collect([topic], (m) => m.length >= 19, 60_000)).map((m) => changeOf(m)!);
    expect(after.slice(18).map((e) => e.after!.id)).toEqual([5]);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await readAll([topic])).length).toBe(19);
  });
});

/** Waits until a checkpoint newer than `old` is stored (the replay has caught up). */
async function eventuallyStored(cfg: Parameters<typeof storedCheckpoints>[0], old: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const cps = await storedCheckpoints(cfg);
    if (cps.length > 0 && encodePosition(cps.at(-1)!) !== old) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error('no checkpoint stored after the replay');
}
