import { type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/load.js';
import type { PipelineConfig } from '../../config/schema.js';
import { RunStore } from '../../pipeline/jobs/progress.js';
import { redisConnection } from '../../pipeline/jobs/queues.js';
import { runVerify } from '../../pipeline/jobs/verify.js';
import { sleep } from '../../util/retry.js';
import { env, uniq } from '../helpers.js';
import { cdc, exec, exitOf, settle, withDb, workload } from './support.js';

describe('snapshots through cdc run (PostgreSQL -> Kafka -> PostgreSQL)', () => {
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

  it('initial snapshot under writes, cdc run killed with -9 mid-snapshot and restarted: resumes, streams, ends equal', async () => {
    const tables = ['accounts', 'orders'];
    const rows = 20_000;
    const s = await setup(tables, rows, 'snapshot: { target: kafka, chunkRows: 2000, concurrency: 2, chunking: key, incrementalChunkRows: 2000 }');
    const load = workload(s.src, tables, rows + 1, rows);
    const redis = redisConnection(env.redis);
    const store = new RunStore(redis, s.cfg.name);
    try {
      // The sink runs in its own process: the kill -9 is aimed at the snapshot's process (the
      // source, which holds the exported snapshot and coordinates the chunks).
      const sink = run(s.file, 'replica');
      let p = run(s.file, 'pg');
      // Kill once a few chunks are in Kafka, well before the end.
      let runId = '';
      for (let i = 0; i < 1200 && !runId; i++) {
        await sleep(50);
        const r = (await store.list(5)).find((x) => x.kind === 'snapshot');
        if (r && (await store.doneChunks(r.id)).size >= 3) runId = r.id;
      }
      expect(runId).not.toBe('');
      p.kill('SIGKILL');
      await new Promise((r) => p.once('exit', r));
      const total = (await store.tables(runId)).reduce((a, t) => a + t.chunks, 0);
      const doneAtKill = await store.doneChunks(runId);
      expect(doneAtKill.size).toBeLessThan(total);

      p = run(s.file, 'pg');
      for (let i = 0; i < 1800; i++) {
        if ((await store.get(runId))?.status === 'done') break;
        await sleep(100);
      }
      const finished = await store.get(runId);
      expect(finished?.status).toBe('done');
      expect(finished?.note).toMatch(/re-read by incremental-/);
      // Only the chunks left at the kill were re-read.
      const resumed = (await store.list(10)).find((r) => r.kind === 'incremental');
      expect(resumed).toBeDefined();
      const resumedChunks = (await store.tables(resumed!.id)).reduce((a, t) => a + t.chunks, 0);
      expect(resumedChunks).toBe(total - doneAtKill.size);

      const writes = await load.stop();
      expect(writes).toBeGreaterThan(20);
      await settle(s.cfg, s.src, s.slot);
      await expectEqual(s.cfg, tables);
      p.kill('SIGTERM');
      sink.kill('SIGTERM');
      await Promise.all([exitOf(p), exitOf(sink)]);
    } finally {
      await load.stop().catch(() => undefined);
      redis.disconnect();
    }
  }, 400_000);

});
