import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/load.js';
import type { PipelineConfig } from '../../config/schema.js';
import { RunStore } from '../../pipeline/jobs/progress.js';
import { redisConnection } from '../../pipeline/jobs/queues.js';
import { runVerify } from '../../pipeline/jobs/verify.js';
import { runSnapshot } from '../../pipeline/snapshot/engine.js';
import { createSlotWithSnapshot } from '../../pipeline/snapshot/pg-export.js';
import { sleep } from '../../util/retry.js';
import { env, uniq, until } from '../helpers.js';
import { exec, withDb } from './support.js';

/**
 * Initial snapshot of several PostgreSQL tables while a write workload runs, through the bulk
 * path, with the chunk worker running as a child process that is killed with -9 mid-way. The
 * hand-off is then proven with PostgreSQL's own apply: a subscription on the replica streams from
 * our slot's consistent point. Native apply fails on a duplicate key (so a row copied twice
 * stalls it) and skips updates of missing rows (so a gap stays visible): `verify` equal at the
 * end means no gap and no duplicate.
 */

const TABLES = ['accounts', 'orders', 'events'];
const ROWS = 12_000;

describe('initial snapshot (PostgreSQL, bulk path, exported snapshot)', () => {
  const db = uniq('snap');
  const slot = uniq('slot');
  const pipeline = uniq('snappipe');
  let dir: string;
  let cfgFile: string;
  let cfg: PipelineConfig;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cdc-snap-'));
    await exec(env.pgSource, `create database ${db}`);
    await exec(env.pgReplica, `create database ${db}`);
    const src = withDb(env.pgSource, db);
    for (const t of TABLES) {
      await exec(src, `create table ${t} (id bigint primary key, v int not null, note text, amount numeric(12,2), at timestamptz default now())`);
      await exec(src, `insert into ${t} select g, g % 97, repeat('x', g % 50), g * 0.5, timestamptz '2026-01-01' + g * interval '1 s' from generate_series(1, ${ROWS}) g`);
    }
    await exec(src, `create table keyless (a int, b text)`);
    await exec(src, `insert into keyless select g % 10, 'k' || g from generate_series(1, 3000) g`);
    await exec(src, `alter table keyless replica identity full`);
    await exec(src, `analyze`);
    await exec(src, `create publication ${slot} for table ${[...TABLES, 'keyless'].join(', ')}`);
    const yaml = `name: ${pipeline}
kafka: { brokers: ["${env.kafka}"] }
redis: { url: "${env.redis}" }
sources:
  - name: pg
    url: ${src}
    tables: { include: ["public.*"] }
sinks:
  - name: replica
    url: ${withDb(env.pgReplica, db)}
snapshot: { target: direct, chunkRows: 1500, concurrency: 2, attempts: 5, backoffMs: 200 }
verify: { chunkRows: 4000 }
log: { level: warn }
`;
    cfgFile = join(dir, 'pipeline.yaml');
    await writeFile(cfgFile, yaml);
    cfg = parseConfig(yaml);
  });

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await exec(withDb(env.pgReplica, db), `drop subscription if exists ${slot}`).catch(() => undefined);
    await exec(env.pgSource, `select pg_drop_replication_slot($1) from pg_replication_slots where slot_name = $1`, [slot]).catch(() => undefined);
    await exec(env.pgSource, `drop database if exists ${db} with (force)`).catch(() => undefined);
    await exec(env.pgReplica, `drop database if exists ${db} with (force)`).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  function startWorker(): ChildProcess {
    const child = spawn('node', ['bin/cdc.js', 'snapshot', 'worker', '-c', cfgFile], {
      env: { ...process.env, CDC_JOB_LOCK_MS: '3000', CDC_JOB_STALLED_MS: '1000', CDC_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.push(child);
    return child;
  }

  it('copies while writes run, survives kill -9 of the worker, and hands off to streaming with no gap and no duplicate', async () => {
    const src = withDb(env.pgSource, db);
    const replica = withDb(env.pgReplica, db);

    // A write workload across all tables for the whole snapshot: inserts, updates, deletes.
    let stop = false;
    let writes = 0;
    const workload = (async () => {
      const c = new pg.Client({ connectionString: src });
      await c.connect();
      let next = ROWS + 1;
      try {
        while (!stop) {
          const t = TABLES[writes % TABLES.length]!;
          await c.query('begin');
          await c.query(`insert into ${t} (id, v, note, amount) values ($1, 1, 'new', 1.5)`, [next++]);
          await c.query(`update ${t} set v = v + 1, note = 'upd' where id = $1`, [1 + ((writes * 7919) % ROWS)]);
          await c.query(`delete from ${t} where id = $1`, [1 + ((writes * 104729) % ROWS)]);
          if (writes % 5 === 0) await c.query(`update keyless set b = b || '!' where a = $1`, [writes % 10]);
          await c.query('commit');
          writes++;
          await sleep(2);
        }
      } finally {
        await c.end();
      }
    })();
    await sleep(300);

    // Slot creation waits for every transaction running on the server: say which, if it is slow.
    const slow = setTimeout(() => {
      exec(src, `select pid, datname, application_name, state, (now() - xact_start)::text as age, left(query, 100) as query from pg_stat_activity where xact_start is not null and pid <> pg_backend_pid() order by xact_start`)
        .then((r) => console.error(`slot creation still waiting after 20 s; open transactions on the source server:\n${JSON.stringify(r.rows, null, 1)}`))
        .catch(() => undefined);
    }, 20_000);
    const exported = await createSlotWithSnapshot(src, slot).finally(() => clearTimeout(slow));
    const redis = redisConnection(env.redis);
    const store = new RunStore(redis, pipeline);
    let runId = '';
    let worker = startWorker();
    const snap = runSnapshot(cfg, {
      source: 'pg',
      snapshotName: exported.snapshotName,
      position: { kind: 'pg', lsn: exported.consistentPoint },
      inProcessWorker: false,
      onPlanned: (_s, id) => {
        runId = id;
      },
      pollMs: 100,
    });

    // Kill the worker once some chunks are in, but not all.
    let doneBefore = new Set<string>();
    // A failed assertion below must not leave the run's rejection unhandled.
    snap.catch(() => undefined);
    // Slot creation waits for transactions already running on the (shared) server: be patient.
    for (let i = 0; i < 2400; i++) {
      await sleep(50);
      if (!runId) continue;
      doneBefore = await store.doneChunks(runId);
      if (doneBefore.size >= 5) break;
    }
    const tables = await store.tables(runId);
    const totalChunks = tables.reduce((a, t) => a + t.chunks, 0);
    expect(doneBefore.size).toBeGreaterThanOrEqual(5);
    worker.kill('SIGKILL');
    const killedAt = Date.now();
    await new Promise((r) => worker.once('exit', r));
    doneBefore = await store.doneChunks(runId);
    expect(doneBefore.size).toBeLessThan(totalChunks);

    worker = startWorker();
    // A run that stops making progress fails here with its records, not at the test's timeout.
    let settled = false;
    snap.finally(() => (settled = true)).catch(() => undefined);
    await until('the snapshot run to finish after the restart', async () => settled, 90_000, {
      describe: async () => {
        const [t, done] = await Promise.all([store.tables(runId), store.doneChunks(runId)]);
        return `${done.size} chunk ids in the done set, per table ${JSON.stringify(t)}`;
      },
    });
    const result = await snap;
    worker.kill('SIGTERM');
    await exported.release();
    expect(result.tables.map((t) => t.table).sort()).toEqual(['public.accounts', 'public.events', 'public.keyless', 'public.orders']);

    // Every chunk is in the replica exactly once (markers are unique per chunk); chunks finished
    // before the kill were not loaded again afterwards.
    const markers = await exec(replica, `select chunk_id, rows, extract(epoch from done_at) * 1000 as at from public.cdc_snapshot_chunks where run_id = $1 and chunk_id like '%#%'`, [runId]);
    expect(markers.rowCount).toBe(totalChunks);
    for (const m of markers.rows as { chunk_id: string; at: string }[]) {
      if (doneBefore.has(m.chunk_id)) expect(Number(m.at)).toBeLessThan(killedAt);
    }

    stop = true;
    await workload;
    expect(writes).toBeGreaterThan(20);

    // Hand-off: PostgreSQL's own apply streams from our slot's consistent point.
    await exec(
      replica,
      `create subscription ${slot} connection 'host=127.0.0.1 port=${new URL(env.pgSource).port} dbname=${db} user=postgres' publication ${slot} with (create_slot = false, slot_name = '${slot}', copy_data = false)`,
    );
    const target = (await exec(src, 'select pg_current_wal_lsn()::text as l')).rows[0].l as string;
    for (let i = 0; ; i++) {
      const r = await exec(src, `select (confirmed_flush_lsn >= $2::pg_lsn) as ok from pg_replication_slots where slot_name = $1`, [slot, target]);
      if (r.rows[0]?.ok) break;
      if (i > 600) throw new Error('subscription did not catch up (a duplicate key stops native apply)');
      await sleep(100);
    }
    const report = await runVerify(cfg, { source: 'pg', sink: 'replica', tables: [...TABLES, 'keyless'].map((t) => ({ db, schema: 'public', table: t })) });
    const diffs = report.tables.map((t) => `${t.table}: ${t.changedCount} changed, ${t.missingCount} missing, ${t.extraCount} extra ${t.problems.join('; ')}`);
    expect(report.equal, diffs.join('\n')).toBe(true);
    const counts = await exec(src, `select (select count(*) from accounts) + (select count(*) from orders) + (select count(*) from events) as n`);
    expect(report.tables.filter((t) => TABLES.includes(t.table.split('.')[1]!)).reduce((a, t) => a + t.replicaRows, 0)).toBe(Number(counts.rows[0].n));
    await exec(replica, `drop subscription ${slot}`);
    await store.remove(runId);
    redis.disconnect();
  });
});
