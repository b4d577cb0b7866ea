// Stream behaviour on the real MariaDB source: table filter and signal table, keyless tables,
// TRUNCATE, binlog rotation, heartbeats, a large transaction in chunks, and the position moving
// on traffic the source does not capture.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MariaGtidList, parseMariaGtid } from '../../connectors/mysql/gtid.js';
import { createMysqlSource } from '../../connectors/mysql/index.js';
import type { SourceRecord } from '../../connectors/source.js';
import type { ChangeEvent } from '../../schemas/change-event.js';
import type { MysqlPosition, SourcePosition } from '../../schemas/position.js';
import { createLogger } from '../../util/log.js';
import { type Running, type TestDb, changeOf, collect, createTestDb, deleteTopics, dropTestDb, eventually, readAll, startSource, storedCheckpoints, testConfig, topicsOf, txOf } from './harness.js';

describe('mysql source: stream behaviour', () => {
  let db: TestDb;
  let other: TestDb;
  let run: Running | undefined;
  let prefix: string | undefined;

  beforeAll(async () => {
    db = await createTestDb('t_mystream');
    other = await createTestDb('t_myother');
    await db.q('CREATE TABLE items (id INT NOT NULL PRIMARY KEY, name VARCHAR(40))');
    await db.q('CREATE TABLE nokey (a INT, b VARCHAR(10))');
    await db.q('CREATE TABLE bulk (id INT NOT NULL PRIMARY KEY, pad VARCHAR(1000))');
    await other.q('CREATE TABLE ignored (id INT PRIMARY KEY)');
    await other.q('CREATE TABLE signal_t (id VARCHAR(40) PRIMARY KEY, type VARCHAR(32), data TEXT)');
  });
  afterAll(async () => {
    await run?.stop();
    await dropTestDb(db);
    await dropTestDb(other);
    if (prefix) await deleteTopics(prefix);
  });

  it('captures only the filtered tables, keyless tables on partition 0, truncates everywhere, rotation followed', async () => {
    const cfg = testConfig([db.name], { mysql: { maxBatchBytes: 256 * 1024, readAheadBytes: 1024 * 1024 } });
    prefix = cfg.name;
    const topics = topicsOf(cfg);
    const t = (table: string, d = db.name) => topics.table({ db: d, schema: null, table });
    run = startSource(cfg);
    const [first] = await storedCheckpointsEventually(cfg);

    await db.q("INSERT INTO items VALUES (1, 'one'), (2, 'two'), (3, 'three')");
    await other.q('INSERT INTO ignored VALUES (1)');
    await db.q("INSERT INTO nokey VALUES (1, 'a'), (2, 'b')");
    await db.q('FLUSH BINARY LOGS');
    await db.q("UPDATE items SET name = 'uno' WHERE id = 1");
    await db.q('TRUNCATE TABLE nokey');
    await db.q("INSERT INTO nokey VALUES (3, 'c')");

    const msgs = await collect([t('items'), t('nokey')], (m) => m.length >= 3 + 1 + 2 + 3 + 1);
    const items = msgs.filter((m) => m.topic === t('items')).map((m) => changeOf(m)!);
    expect(items.map((e) => `${e.op}:${JSON.stringify(e.after)}`)).toEqual(
      expect.arrayContaining(['c:{"id":1,"name":"one"}', 'c:{"id":2,"name":"two"}', 'c:{"id":3,"name":"three"}', 'u:{"id":1,"name":"uno"}']),
    );
    // The same GTID for the three rows of one statement, seq 0..2; the update after the rotation in the next file.
    const ins = items.filter((e) => e.op === 'c');
    expect(new Set(ins.map((e) => e.source.gtid)).size).toBe(1);
    expect(ins.map((e) => (e.position as MysqlPosition).seq).sort()).toEqual([0, 1, 2]);
    const upd = items.find((e) => e.op === 'u')!;
    expect(upd.source.file).not.toBe(ins[0]!.source.file);

    const nokey = msgs.filter((m) => m.topic === t('nokey'));
    const rows = nokey.filter((m) => changeOf(m)!.op !== 't');
    expect(rows.every((m) => m.key === null && m.partition === 0)).toBe(true);
    const truncates = nokey.filter((m) => changeOf(m)!.op === 't');
    expect(truncates.map((m) => m.partition).sort()).toEqual([0, 1, 2]);
    // Order on partition 0: the two rows, the truncate, the row after it.
    expect(nokey.filter((m) => m.partition === 0).map((m) => changeOf(m)!.op)).toEqual(['c', 'c', 't', 'c']);

    // Nothing from the database outside the filter.
    expect(msgs.some((m) => m.topic.includes('ignored'))).toBe(false);

    // Writes the source does not capture still move its stored position (no replay of them after a restart).
    await other.q('INSERT INTO ignored VALUES (2), (3)');
    const [[pos]] = (await other.conn.query('SELECT @@gtid_binlog_pos AS g')) as unknown as [{ g: string }[]];
    const mine = pos!.g.split(',').map(parseMariaGtid).find((g) => g.domain === 1)!;
    await eventually(
      async () => {
        const cps = await storedCheckpoints(cfg);
        const last = cps.at(-1) as MysqlPosition | undefined;
        return last?.gtidSet !== undefined && MariaGtidList.parse(last.gtidSet).contains(mine);
      },
      30_000,
      'checkpoint past uncaptured writes',
    );
    expect(first).toBeDefined();

    // Idle: heartbeat records with the position.
    const hb = await collect([topics.heartbeat], (m) => m.length >= 1, 30_000);
    const beat = JSON.parse(hb[0]!.value!.toString()) as { ts_ms: number; position: MysqlPosition };
    expect(beat.position.kind).toBe('mysql');
    expect(beat.position.gtidSet).toMatch(/\d+-\d+-\d+/);
  });

  it('emits the rows of the configured signal table, outside the filter, like any other table', async () => {
    // Straight from the connector (the pipeline's snapshot window hook consumes signal rows).
    const cfg = testConfig([db.name], { prefix, mysql: { signalTable: `${other.name}.signal_t` } });
    const connector = createMysqlSource(cfg.sources[0]!, cfg);
    const records: SourceRecord[] = [];
    const ac = new AbortController();
    let stored: SourcePosition | null = null;
    const done = connector.run({
      publish: async (b) => {
        records.push(...b.records);
        if (b.checkpoint) stored = b.checkpoint;
      },
      loadCheckpoint: async () => stored,
      log: createLogger('error'),
      signal: ac.signal,
    });
    await eventually(async () => stored !== null, 30_000, 'start position');
    await other.q("INSERT INTO signal_t VALUES ('w-1', 'snapshot-window-open', '{}')");
    await other.q('INSERT INTO ignored VALUES (100)');
    await db.q("INSERT INTO items VALUES (50, 'fifty')");
    const changes = () => records.filter((r) => r.type === 'change').map((r) => (r as { event: ChangeEvent }).event);
    await eventually(async () => changes().length >= 2, 30_000, 'signal and item rows');
    ac.abort();
    await done;
    await connector.close();
    expect(changes().map((e) => `${e.source.db}.${e.source.table}:${JSON.stringify(e.after)}`)).toEqual([
      `${other.name}.signal_t:{"id":"w-1","type":"snapshot-window-open","data":"{}"}`,
      `${db.name}.items:{"id":50,"name":"fifty"}`,
    ]);
    expect(changes()[0]!.schema.primaryKey).toEqual(['id']);
  });

  it('publishes a transaction larger than one batch in chunks, every row once, with one END', async () => {
    const cfg = testConfig([db.name], { prefix, mysql: { maxBatchBytes: 256 * 1024, readAheadBytes: 1024 * 1024 } });
    const topics = topicsOf(cfg);
    const rows = 20_000;
    await db.q('BEGIN');
    for (let i = 0; i < rows; i += 2000) {
      const values = Array.from({ length: 2000 }, (_, k) => `(${i + k + 1}, REPEAT('x', 900))`).join(', ');
      await db.q(`INSERT INTO bulk VALUES ${values}`);
    }
    await db.q('COMMIT');
    const bulk = topics.table({ db: db.name, schema: null, table: 'bulk' });
    const msgs = await collect([bulk], (m) => m.length >= rows, 120_000);
    const evs = msgs.map((m) => changeOf(m)!);
    expect(new Set(evs.map((e) => e.after!.id)).size).toBe(rows);
    expect(new Set(evs.map((e) => e.source.gtid)).size).toBe(1);
    const tx = (await readAll([topics.transaction])).map(txOf).filter((x) => x.id === evs[0]!.source.gtid);
    expect(tx.map((x) => x.status)).toEqual(['BEGIN', 'END']);
    expect(tx[1]!.event_count).toBe(rows);
  });
});

async function storedCheckpointsEventually(cfg: Parameters<typeof storedCheckpoints>[0]) {
  return eventually(async () => {
    const cps = await storedCheckpoints(cfg);
    return cps.length > 0 ? cps : null;
  }, 60_000, 'first checkpoint');
}
