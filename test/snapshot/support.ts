import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect } from 'vitest';
import { parseConfig } from '../../config/load.js';
import type { PipelineConfig } from '../../config/schema.js';
import { RunStore } from '../../pipeline/jobs/progress.js';
import { redisConnection } from '../../pipeline/jobs/queues.js';
import { runVerify } from '../../pipeline/jobs/verify.js';
import { sleep } from '../../util/retry.js';
import { env, uniq } from '../helpers.js';

/**
 * Shared by the snapshot-through-the-pipeline tests. Snapshots through the whole pipeline (`cdc run`: PostgreSQL source -> Kafka -> PostgreSQL
 * sink), with a write workload on the source throughout: an initial snapshot whose `cdc run` is
 * killed with -9 mid-way and restarted (the unfinished chunks finish in watermark windows while
 * streaming), and `cdc snapshot TABLE` repairing a corrupted replica table while the pipeline
 * keeps streaming the others. `verify` must find the replica equal to the source at the end.
 */

export function withDb(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

export async function exec(url: string, text: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await c.query(text, params);
  } finally {
    await c.end();
  }
}

export function cdc(args: string[], extraEnv: Record<string, string> = {}): ChildProcess {
  return spawn('node', ['bin/cdc.js', ...args], { env: { ...process.env, CDC_LOG_LEVEL: 'warn', ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
}

export async function exitOf(p: ChildProcess): Promise<{ code: number | null; out: string; err: string }> {
  let out = '';
  let err = '';
  p.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => p.once('exit', (c) => resolve(c)));
  return { code, out, err };
}

/** Inserts, updates and deletes across tables until stopped. */
export function workload(url: string, tables: string[], firstNewId: number, maxId: number): { stop(): Promise<number> } {
  let stop = false;
  let writes = 0;
  const done = (async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    let next = firstNewId;
    try {
      while (!stop) {
        const t = tables[writes % tables.length]!;
        await c.query('begin');
        await c.query(`insert into ${t} (id, v, note) values ($1, 1, 'new')`, [next++]);
        await c.query(`update ${t} set v = v + 1, note = 'upd' || v where id = $1`, [1 + ((writes * 7919) % maxId)]);
        await c.query(`delete from ${t} where id = $1`, [1 + ((writes * 104729) % maxId)]);
        await c.query('commit');
        writes++;
        await sleep(5);
      }
    } finally {
      await c.end();
    }
  })();
  return {
    async stop() {
      stop = true;
      await done;
      return writes;
    },
  };
}

/** Waits until the replica has caught up with the source's current WAL position (slot confirmed and sink idle). */
export async function settle(cfg: PipelineConfig, src: string, slot: string): Promise<void> {
  await exec(src, `insert into cdc_signal (id, type, data) values ($1, 'marker', null)`, [uniq('m')]);
  const target = (await exec(src, 'select pg_current_wal_lsn()::text as l')).rows[0].l as string;
  for (let i = 0; i < 600; i++) {
    const r = await exec(src, `select confirmed_flush_lsn >= $2::pg_lsn as ok from pg_replication_slots where slot_name = $1`, [slot, target]);
    if (r.rows[0]?.ok) break;
    await sleep(100);
  }
  // Kafka -> replica lag: verify until equal or out of patience (the sink applies in batches).
  void cfg;
  await sleep(3000);
}

/**
 * A PostgreSQL -> Kafka -> PostgreSQL pipeline fixture for `cdc run` tests: `setup` makes the
 * databases, tables and config; `run` starts `cdc run` (optionally `--only` one part);
 * `expectEqual` waits until `verify` finds the replica equal. Call inside a `describe`.
 */
export function pipelineFixture() {
  let dir: string;
  const running: ChildProcess[] = [];
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cdc-snappipe-'));
  });

  afterAll(async () => {
    for (const p of running) if (p.exitCode === null) p.kill('SIGKILL');
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  async function setup(tables: string[], rows: number, snapshotYaml: string): Promise<{ db: string; src: string; replica: string; cfg: PipelineConfig; file: string; slot: string }> {
    const db = uniq('sp');
    const slot = db;
    await exec(env.pgSource, `create database ${db}`);
    await exec(env.pgReplica, `create database ${db}`);
    const src = withDb(env.pgSource, db);
    const replica = withDb(env.pgReplica, db);
    cleanups.push(async () => {
      // Our killed pipeline's walsender may still hold the slot: end it, then drop the slot.
      for (let i = 0; i < 20; i++) {
        await exec(env.pgSource, `select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = $1 and active`, [slot]).catch(() => undefined);
        const r = await exec(env.pgSource, `select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1 and not active`, [slot]).catch(() => null);
        const left = await exec(env.pgSource, `select 1 from pg_replication_slots where slot_name = $1`, [slot]);
        if (r !== null && left.rowCount === 0) break;
        await sleep(500);
      }
      await exec(env.pgSource, `drop database if exists ${db} with (force)`);
      await exec(env.pgReplica, `drop database if exists ${db} with (force)`);
    });
    for (const t of tables) {
      await exec(src, `create table ${t} (id bigint primary key, v int not null, note text)`);
      await exec(src, `insert into ${t} select g, g % 100, repeat('n', 100) from generate_series(1, ${rows}) g`);
    }
    await exec(src, `create table cdc_signal (id varchar(64) primary key, type varchar(32) not null, data text)`);
    await exec(src, 'analyze');
    const yaml = `name: ${db}
kafka: { brokers: ["${env.kafka}"], partitions: 2, topicPrefix: ${db} }
redis: { url: "${env.redis}" }
sources:
- name: pg
  url: ${src}
  tables: { include: [${tables.map((t) => `"public.${t}"`).join(', ')}] }
  postgres: { slot: ${slot}, publication: ${slot}, signalTable: public.cdc_signal, heartbeatIntervalMs: 1000 }
sinks:
- name: replica
  url: ${replica}
  group: ${db}-sink
${snapshotYaml}
verify: { chunkRows: 20000 }
log: { level: ${process.env.CDC_TEST_CHILD_LOG ? 'info' : 'warn'} }
`;
    const file = join(dir, `${db}.yaml`);
    await writeFile(file, yaml);
    const cfg = parseConfig(yaml);
    cleanups.push(async () => {
      const redis = redisConnection(env.redis);
      const store = new RunStore(redis, cfg.name);
      for (const r of await store.list(100)) await store.remove(r.id);
      redis.disconnect();
    });
    return { db, src, replica, cfg, file, slot };
  }

  function run(file: string, only?: string): ChildProcess {
    const p = cdc(['run', '-c', file, ...(only ? ['--only', only] : [])], { CDC_SNAPSHOT_LEASE_MS: '3000' });
    // CDC_TEST_CHILD_LOG=<file>: keep the pipeline's log for diagnosis.
    const logFile = process.env.CDC_TEST_CHILD_LOG;
    p.stderr?.on('data', (d: Buffer) => {
      if (logFile) appendFileSync(logFile, d);
    });
    running.push(p);
    return p;
  }

  async function expectEqual(cfg: PipelineConfig, tables: string[]): Promise<void> {
    let last = '';
    // A sink restarted after kill -9 waits for Kafka to evict its dead group member (session
    // timeout) before it consumes again: be patient, the end state is what is checked.
    const deadline = Date.now() + 150_000;
    while (Date.now() < deadline) {
      const report = await runVerify(cfg, { source: 'pg', sink: 'replica' });
      if (report.equal) {
        expect(report.tables.map((t) => t.table).sort()).toEqual(tables.map((t) => `public.${t}`).sort());
        return;
      }
      last = report.tables.map((t) => `${t.table}: ${t.changedCount} changed, ${t.missingCount} missing, ${t.extraCount} extra; ${t.problems.join('; ')}`).join('\n');
      await sleep(3000);
    }
    throw new Error(`replica differs from the source:\n${last}`);
  }

  return { setup, run, expectEqual };
}
