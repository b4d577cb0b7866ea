// kill -9 of the connector process at random moments under a continuous write workload: every
// committed change must reach Kafka, in commit order per key; a change may appear twice only as
// an exact copy carrying the same position. (The servers are never killed here: only our process.)
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLsn } from '../../connectors/postgres/lsn.js';
import { repoRoot } from '../../infra/servers.js';
import { type ChangeEvent, encodePosition } from '../../schemas/index.js';
import { env, uniq } from '../helpers.js';
import { type TestDb, changeEvent, createTestDb, deleteTopics, dropTestDb, readAll, sleep } from './harness.js';

const WORKLOAD_MS = Number(process.env.CDC_CRASH_WORKLOAD_MS ?? 30_000);
const KEYS_PER_WORKER = 40;

interface Committed {
  id: number;
  op: 'c' | 'u' | 'd';
  v: number | null;
}

/** One writer on its own keys: random inserts/updates/deletes, some multi-statement, some rolled back. */
async function writer(url: string, base: number, until: number, log: Committed[]): Promise<number> {
  const c = new pg.Client(url);
  await c.connect();
  const value = new Map<number, number>();
  let version = 0;
  let txs = 0;
  try {
    while (Date.now() < until) {
      const ops: Committed[] = [];
      const n = 1 + Math.floor(Math.random() * 4);
      const rollback = Math.random() < 0.1;
      await c.query('begin');
      for (let i = 0; i < n; i++) {
        const id = base + Math.floor(Math.random() * KEYS_PER_WORKER);
        const cur = value.get(id);
        const v = ++version;
        if (cur === undefined) {
          await c.query('insert into kv (id, v, pad) values ($1, $2, $3)', [id, v, 'p'.repeat(Math.floor(Math.random() * 200))]);
          ops.push({ id, op: 'c', v });
          value.set(id, v);
        } else if (Math.random() < 0.2) {
          await c.query('delete from kv where id = $1', [id]);
          ops.push({ id, op: 'd', v: null });
          value.delete(id);
        } else {
          await c.query('update kv set v = $2 where id = $1', [id, v]);
          ops.push({ id, op: 'u', v });
          value.set(id, v);
        }
      }
      if (rollback) {
        await c.query('rollback');
        // Undo our bookkeeping: nothing of this transaction happened.
        for (const o of ops.reverse()) {
          const before = [...log].reverse().find((x) => x.id === o.id);
          if (before === undefined || before.op === 'd') value.delete(o.id);
          else value.set(o.id, before.v!);
        }
      } else {
        await c.query('commit');
        log.push(...ops);
        txs++;
      }
    }
  } finally {
    await c.end();
  }
  return txs;
}

describe('postgres source: kill -9 of the connector under load', () => {
  let db: TestDb;
  const prefix = uniq('pgcrash');
  const dir = mkdtempSync(join(tmpdir(), 'cdc-pg-crash-'));
  const cfgFile = join(dir, 'pipeline.json');
  const logFile = join(dir, 'connector.log');
  let proc: ChildProcess | null = null;

  const start = () => {
    const out = openSync(logFile, 'a');
    proc = spawn(process.execPath, [join(repoRoot, 'bin/cdc.js'), 'run', '-c', cfgFile, '--only', 'pg'], {
      cwd: repoRoot,
      stdio: ['ignore', out, out],
      env: { ...process.env, CDC_LOG_LEVEL: 'info' },
    });
  };
  const kill9 = async () => {
    const p = proc;
    proc = null;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  };

  beforeAll(async () => {
    db = await createTestDb('t_crash');
    await db.q(`create table kv (id int primary key, v bigint not null, pad text)`);
    writeFileSync(
      cfgFile,
      JSON.stringify({
        name: prefix,
        kafka: { brokers: env.kafka.split(','), partitions: 3 },
        sources: [{ name: 'pg', url: db.url, postgres: { slot: db.name, publication: db.name, heartbeatIntervalMs: 1000, statusIntervalMs: 1000 } }],
        // The stream alone: no initial snapshot (its r events, and its resumption after a kill, are the snapshot engine's).
        snapshot: { mode: 'never' },
        log: { level: 'info' },
      }),
    );
  });

  afterAll(async () => {
    await kill9();
    await dropTestDb(db);
    await deleteTopics(prefix);
  });

  it('loses nothing and keeps per-key commit order across random kill -9', async () => {
    start();
    for (let i = 0; ; i++) {
      if ((await db.q(`select 1 from pg_replication_slots where slot_name = $1`, [db.name])).length > 0) break;
      if (i > 600) throw new Error(`connector never created its slot; log:\n${readFileSync(logFile, 'utf8').slice(-3000)}`);
      await sleep(100);
    }

    const log1: Committed[] = [];
    const log2: Committed[] = [];
    const until = Date.now() + WORKLOAD_MS;
    const work = Promise.all([writer(db.url, 0, until, log1), writer(db.url, 1000, until, log2)]);
    let kills = 0;
    while (Date.now() < until - 2000) {
      await sleep(1000 + Math.random() * 4000);
      await kill9();
      kills++;
      await sleep(Math.random() * 1500);
      start();
    }
    const txs = await work;
    const endLsn = (await db.q(`select pg_current_wal_lsn()::text as l`))[0]!.l!;

    // Let the last instance catch up with everything committed.
    for (let i = 0; ; i++) {
      const [s] = await db.q(`select confirmed_flush_lsn::text as l from pg_replication_slots where slot_name = $1`, [db.name]);
      if (s?.l && parseLsn(s.l) >= parseLsn(endLsn)) break;
      if (i > 1200) throw new Error(`connector did not catch up; log:\n${readFileSync(logFile, 'utf8').slice(-3000)}`);
      await sleep(100);
    }
    await kill9();

    const committed = [...log1, ...log2];
    console.log(`connector log: ${logFile}`);
    const topic = `${prefix}.pg.${db.name}.public.kv`;
    const [{ n }] = (await db.q(`select count(*)::int as n from kv`)) as [{ n: string }];
    const msgs = await readAll([topic]);

    // Duplicates only as exact copies (same position, same envelope but the processing time).
    const byPosition = new Map<string, string>();
    const perKey = new Map<number, ChangeEvent[]>();
    let duplicates = 0;
    for (const m of msgs) {
      const e = await changeEvent(m);
      if (!e) continue;
      const pos = encodePosition(e.position);
      const body = JSON.stringify({ ...e, ts_ms: 0, key: m.key?.toString() });
      const first = byPosition.get(pos);
      if (first !== undefined) {
        expect(body, `duplicate at ${pos} differs from its first copy`).toBe(first);
        duplicates++;
        continue;
      }
      byPosition.set(pos, body);
      const id = Number((e.after ?? e.before)!.id);
      perKey.set(id, [...(perKey.get(id) ?? []), e]);
    }

    // Every committed change, per key in commit order, and nothing else (no rolled-back writes).
    const expected = new Map<number, string[]>();
    for (const c of committed) expected.set(c.id, [...(expected.get(c.id) ?? []), `${c.op}:${c.v}`]);
    let checked = 0;
    for (const [id, ops] of expected) {
      const got = (perKey.get(id) ?? []).map((e) => `${e.op}:${e.op === 'd' ? null : Number(e.after!.v)}`);
      expect(got, `key ${id}`).toEqual(ops);
      checked += ops.length;
    }
    expect([...perKey.keys()].filter((k) => !expected.has(k))).toEqual([]);
    expect(checked).toBe(committed.length);

    console.log(
      `crash test: ${txs[0] + txs[1]} transactions, ${committed.length} committed changes, ${kills} kill -9, ` +
        `${duplicates} duplicate records (exact copies), ${Number(n)} rows left`,
    );
    expect(kills).toBeGreaterThanOrEqual(3);
    expect(committed.length).toBeGreaterThan(500);
  });
});
