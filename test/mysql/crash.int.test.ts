// kill -9 of the connector process at random moments under continuous writes, with binlog
// rotations and transactions large enough to be published in several Kafka transactions:
// nothing is lost, each key's changes arrive in commit order, and every duplicate is an exact
// copy of an earlier event with the same GTID + seq.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChangeEvent } from '../../schemas/change-event.js';
import { MariaGtidList, parseMariaGtid } from '../../connectors/mysql/gtid.js';
import { repoRoot } from '../../infra/servers.js';
import { env, uniq } from '../helpers.js';
import { type TestDb, changeOf, createTestDb, deleteTopics, dropTestDb, eventually, randomServerId, readAll, storedCheckpoints, topicsOf, txOf } from './harness.js';
import { pipelineConfig } from '../../config/schema.js';

const WRITE_MS = Number(process.env.CDC_CRASH_WRITE_MS ?? 20_000);
const KEYS = 40;
const BIG_ROWS = 1500;

interface Logged {
  op: 'c' | 'u' | 'd';
  v: number | null;
}

describe('mysql source: kill -9 under continuous writes', () => {
  let db: TestDb;
  let child: ChildProcess | undefined;
  const prefix = uniq('mycrash');
  const stderr: string[] = [];
  let streaming = 0;

  beforeAll(async () => {
    db = await createTestDb('t_mycrash');
    await db.q('CREATE TABLE kv (id INT NOT NULL PRIMARY KEY, v INT NOT NULL, pad VARCHAR(100))');
    await db.q('CREATE TABLE big (id INT NOT NULL PRIMARY KEY, k INT NOT NULL, pad VARCHAR(200))');
  });
  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await dropTestDb(db);
    await deleteTopics(prefix);
  });

  it('loses nothing, keeps per-key order, and duplicates carry the same GTID + seq', async () => {
    const raw = {
      name: prefix,
      kafka: { brokers: env.kafka.split(','), partitions: 3 },
      sources: [
        {
          name: 'my',
          url: env.mariaSource,
          tables: { include: [`${db.name}.*`] },
          // Small batches: the 1500-row transactions go out in many chunks, so kills land mid-transaction.
          mysql: { serverId: randomServerId(), heartbeatIntervalMs: 1000, maxBatchBytes: 64 * 1024, maxBatchEvents: 200 },
        },
      ],
      log: { level: 'info' },
      // The stream only: no initial snapshot of the tables (that is the snapshot engine's test).
      snapshot: { mode: 'never' },
    };
    const cfg = pipelineConfig.parse(raw);
    const dir = mkdtempSync(join(tmpdir(), 'mycrash-'));
    const cfgFile = join(dir, 'pipeline.yaml');
    writeFileSync(cfgFile, JSON.stringify(raw));

    const start = () => {
      child = spawn(process.execPath, [join(repoRoot, 'bin/cdc.js'), 'run', '-c', cfgFile, '--only', 'my'], { stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr!.on('data', (d: Buffer) => {
        const text = d.toString();
        if (text.includes('binlog stream open')) streaming++;
        stderr.push(text);
        if (stderr.length > 200) stderr.shift();
      });
    };
    const kill9 = async () => {
      const c = child!;
      if (c.exitCode !== null) throw new Error(`connector exited by itself (code ${c.exitCode}): ${stderr.join('').slice(-2000)}`);
      const gone = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await gone;
    };

    await db.q(`INSERT INTO big (id, k, pad) SELECT seq, 0, REPEAT('p', 150) FROM seq_1_to_${BIG_ROWS}`);
    start();
    await eventually(async () => (await storedCheckpoints(cfg)).length > 0, 60_000, 'first checkpoint');

    // Writer: one connection, so commit order is issue order.
    const log = new Map<number, Logged[]>();
    const state = new Map<number, number>();
    let bigRounds = 0;
    let rotations = 0;
    const files = new Set<string>();
    const record = (id: number, op: Logged['op'], v: number | null) => log.set(id, [...(log.get(id) ?? []), { op, v }]);
    const stepOne = async (pending: (() => void)[]) => {
      const id = 1 + Math.floor(Math.random() * KEYS);
      const cur = state.get(id);
      if (cur === undefined) {
        await db.q('INSERT INTO kv VALUES (?, 0, ?)', [id, `pad-${id}`]);
        pending.push(() => (state.set(id, 0), record(id, 'c', 0)));
      } else if (Math.random() < 0.85) {
        await db.q('UPDATE kv SET v = v + 1 WHERE id = ?', [id]);
        pending.push(() => (state.set(id, cur + 1), record(id, 'u', cur + 1)));
      } else {
        await db.q('DELETE FROM kv WHERE id = ?', [id]);
        pending.push(() => (state.delete(id), record(id, 'd', null)));
      }
    };
    let writing = true;
    let kills = 0;
    const began = Date.now();
    // Write for WRITE_MS and until the connector was killed 4 times (a slow machine restarts it slowly).
    const keepWriting = () => Date.now() - began < WRITE_MS || (kills < 4 && Date.now() - began < 3 * WRITE_MS);
    const writer = (async () => {
      let lastBig = Date.now();
      let lastRotate = Date.now();
      while (keepWriting()) {
        const pending: (() => void)[] = [];
        if (Math.random() < 0.15) {
          // Several keys in one transaction; the log only takes them once it committed.
          const local = new Map(state);
          await db.q('BEGIN');
          const n = 2 + Math.floor(Math.random() * 4);
          for (let i = 0; i < n; i++) {
            const id = 1 + Math.floor(Math.random() * KEYS);
            const cur = local.get(id);
            if (cur === undefined) {
              await db.q('INSERT INTO kv VALUES (?, 0, ?)', [id, 'tx']);
              local.set(id, 0);
              pending.push(() => record(id, 'c', 0));
            } else {
              await db.q('UPDATE kv SET v = v + 1 WHERE id = ?', [id]);
              local.set(id, cur + 1);
              pending.push(() => record(id, 'u', cur + 1));
            }
          }
          await db.q('COMMIT');
          state.clear();
          for (const [k, v] of local) state.set(k, v);
          for (const p of pending) p();
        } else {
          await stepOne(pending);
          for (const p of pending) p();
        }
        if (Date.now() - lastBig > 1500) {
          await db.q('UPDATE big SET k = k + 1');
          bigRounds++;
          lastBig = Date.now();
        }
        if (Date.now() - lastRotate > 7000) {
          await db.q('FLUSH BINARY LOGS');
          rotations++;
          lastRotate = Date.now();
        }
      }
      writing = false;
    })();

    // Killer: SIGKILL at a random moment once the restarted connector streams again.
    while (writing) {
      await eventually(async () => streaming > kills || !writing, 60_000, 'connector streaming again');
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 2500));
      if (!writing) break;
      await kill9();
      kills++;
      await new Promise((r) => setTimeout(r, Math.random() * 1000));
      start();
    }
    await writer;
    const [[end]] = (await db.conn.query('SELECT @@gtid_binlog_pos AS g')) as unknown as [{ g: string }[]];
    const target = MariaGtidList.parse(end!.g);
    const domain1 = end!.g.split(',').map((g) => parseMariaGtid(g)).find((g) => g.domain === 1)!;

    // Wait until the stored checkpoint covers the last write, then read everything.
    await eventually(
      async () => {
        const cps = await storedCheckpoints(cfg);
        const last = cps.at(-1);
        return last?.kind === 'mysql' && last.gtidSet !== undefined && MariaGtidList.parse(last.gtidSet).contains(domain1);
      },
      120_000,
      `checkpoint covering ${target.toString()}`,
    );
    child!.kill('SIGTERM');

    const topics = topicsOf(cfg);
    const kvTopic = topics.table({ db: db.name, schema: null, table: 'kv' });
    const bigTopic = topics.table({ db: db.name, schema: null, table: 'big' });
    const msgs = await readAll([kvTopic, bigTopic, topics.transaction]);
    const events = msgs.filter((m) => m.topic !== topics.transaction && m.value !== null).map((m) => ({ m, e: changeOf(m)! }));

    // Duplicates: same GTID + seq must be the same event.
    const byId = new Map<string, ChangeEvent>();
    let dups = 0;
    const unique: { m: (typeof events)[number]['m']; e: ChangeEvent }[] = [];
    for (const x of events) {
      const p = x.e.position;
      if (p.kind !== 'mysql') throw new Error('not a mysql position');
      if (typeof p.gtid !== 'string' || !/^\d+-\d+-\d+$/.test(p.gtid)) throw new Error(`event without a GTID: ${JSON.stringify(x.e.source)} ${JSON.stringify(x.e.transaction)} ${x.m.topic}`);
      const id = `${p.gtid}#${p.seq}`;
      const seen = byId.get(id);
      if (seen) {
        dups++;
        expect({ op: x.e.op, before: x.e.before, after: x.e.after, position: x.e.position }).toEqual({ op: seen.op, before: seen.before, after: seen.after, position: seen.position });
        continue;
      }
      byId.set(id, x.e);
      unique.push(x);
      files.add(p.file);
    }

    // Per key, the deduplicated changes are exactly the writer's committed log, in order.
    const kv = unique.filter((x) => x.m.topic === kvTopic);
    for (let id = 1; id <= KEYS; id++) {
      const got = kv.filter((x) => (x.e.after ?? x.e.before)!.id === id).map((x) => ({ op: x.e.op, v: x.e.after === null ? null : (x.e.after.v as number) }));
      expect(got, `key ${id}`).toEqual(log.get(id) ?? []);
    }
    // Every big-transaction round reached every row, in order.
    const big = unique.filter((x) => x.m.topic === bigTopic);
    expect(big).toHaveLength(bigRounds * BIG_ROWS);
    for (const rowId of [1, 750, BIG_ROWS]) {
      expect(big.filter((x) => x.e.after!.id === rowId).map((x) => x.e.after!.k)).toEqual(Array.from({ length: bigRounds }, (_, i) => i + 1));
    }
    // Transaction metadata: each END's count equals the distinct events of that transaction.
    const ends = new Map(msgs.filter((m) => m.topic === topics.transaction).map(txOf).filter((t) => t.status === 'END').map((t) => [t.id, t.event_count]));
    const perTx = new Map<string, number>();
    for (const x of unique) perTx.set(x.e.transaction!.id, (perTx.get(x.e.transaction!.id) ?? 0) + 1);
    for (const [tx, n] of perTx) expect(ends.get(tx), `END of ${tx}`).toBe(n);

    // It aims for 4 kills; a loaded machine restarts the CLI slowly, and 2 kills still cover a restart after a crash twice.
    expect(kills).toBeGreaterThanOrEqual(2);
    expect(rotations).toBeGreaterThanOrEqual(2);
    expect(files.size).toBeGreaterThanOrEqual(3);
    console.log(`crash test: ${kills} kills, ${rotations} rotations, ${bigRounds} big transactions, ${unique.length} distinct events, ${dups} duplicates`);
  });
});
