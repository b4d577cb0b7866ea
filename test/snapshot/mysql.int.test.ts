import { appendFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../config/load.js';
import type { PipelineConfig } from '../../config/schema.js';
import { RunStore } from '../../pipeline/jobs/progress.js';
import { redisConnection } from '../../pipeline/jobs/queues.js';
import { runVerify } from '../../pipeline/jobs/verify.js';
import { sleep } from '../../util/retry.js';
import { env, uniq } from '../helpers.js';
import { cdc, exitOf } from './support.js';

/**
 * MariaDB -> Kafka -> MariaDB through `cdc run`: the initial snapshot (consistent sessions at one
 * binlog position, bulk multi-row INSERTs) under a write workload, then streaming; then
 * `cdc snapshot db.table` repairs a corrupted replica table while the pipeline streams.
 */

async function q(url: string, text: string, params: unknown[] = []): Promise<unknown> {
  const c = await mysql.createConnection({ uri: url, multipleStatements: true });
  try {
    const [rows] = await c.query(text, params);
    return rows;
  } finally {
    await c.end();
  }
}

describe('MariaDB snapshots through cdc run', () => {
  const db = uniq('msnap');
  let dir: string;
  let cfg: PipelineConfig;
  let file: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cdc-msnap-'));
    await q(env.mariaSource, `create database ${db}`);
    await q(env.mariaReplica, `create database ${db}`);
    await q(
      env.mariaSource,
      `set session max_recursive_iterations = 100000;
       create table ${db}.items (id bigint primary key, v int not null, note varchar(200), at datetime(6), amount decimal(12,2));
       insert into ${db}.items with recursive g(n) as (select 1 union all select n + 1 from g where n < 20000)
         select n, n % 100, concat('n', n), '2026-01-01 00:00:00.5', n * 0.25 from g;
       create table ${db}.cdc_signal (id varchar(64) primary key, type varchar(32) not null, data text);`,
    );
    const yaml = `name: ${db}
kafka: { brokers: ["${env.kafka}"], partitions: 2 }
redis: { url: "${env.redis}" }
sources:
  - name: maria
    url: ${env.mariaSource}/${db}
    tables: { include: ["${db}.items"] }
    mysql: { serverId: ${6000 + Math.floor(Math.random() * 1000)}, signalTable: ${db}.cdc_signal }
sinks:
  - name: replica
    url: ${env.mariaReplica}/${db}
    group: ${db}-sink
snapshot: { target: direct, chunkRows: 3000, incrementalChunkRows: 2500 }
log: { level: ${process.env.CDC_TEST_CHILD_LOG ? 'info' : 'warn'} }
`;
    file = join(dir, 'pipeline.yaml');
    await writeFile(file, yaml);
    cfg = parseConfig(yaml);
  });

  afterAll(async () => {
    await q(env.mariaSource, `drop database if exists ${db}`).catch(() => undefined);
    await q(env.mariaReplica, `drop database if exists ${db}`).catch(() => undefined);
    const redis = redisConnection(env.redis);
    const store = new RunStore(redis, cfg.name);
    for (const r of await store.list(100)) await store.remove(r.id);
    redis.disconnect();
    await rm(dir, { recursive: true, force: true });
  });

  async function expectEqual(): Promise<void> {
    let last = '';
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      const r = await runVerify(cfg, { source: 'maria', sink: 'replica' });
      if (r.equal) return;
      last = r.tables.map((t) => `${t.table}: ${t.changedCount} changed, ${t.missingCount} missing, ${t.extraCount} extra; ${t.problems.join('; ')}`).join('\n');
      await sleep(3000);
    }
    throw new Error(`replica differs:\n${last}`);
  }

  it('initial snapshot under writes, streaming, then cdc snapshot repairs a corrupted replica table', async () => {
    let stop = false;
    let writes = 0;
    const load = (async () => {
      const c = await mysql.createConnection({ uri: `${env.mariaSource}/${db}` });
      let next = 100_000;
      try {
        while (!stop) {
          await c.beginTransaction();
          await c.query(`insert into items (id, v, note) values (?, 1, 'new')`, [next++]);
          await c.query(`update items set v = v + 1, note = concat('upd', v) where id = ?`, [1 + ((writes * 7919) % 20000)]);
          await c.query(`delete from items where id = ?`, [1 + ((writes * 104729) % 20000)]);
          await c.commit();
          writes++;
          await sleep(5);
        }
      } finally {
        await c.end();
      }
    })();
    const p = cdc(['run', '-c', file]);
    const logFile = process.env.CDC_TEST_CHILD_LOG;
    p.stderr?.on('data', (d: Buffer) => {
      if (logFile) appendFileSync(logFile, d);
    });
    const redis = redisConnection(env.redis);
    try {
      const store = new RunStore(redis, cfg.name);
      for (let i = 0; i < 1200; i++) {
        const r = (await store.list(5)).find((x) => x.kind === 'snapshot');
        if (r?.status === 'done') break;
        await sleep(100);
      }
      const initial = (await store.list(5)).find((x) => x.kind === 'snapshot');
      expect(initial?.status).toBe('done');
      await sleep(1000);
      stop = true;
      await load;
      expect(writes).toBeGreaterThan(20);
      await expectEqual();

      await q(env.mariaReplica, `update ${db}.items set note = 'corrupt' where id = 500; delete from ${db}.items where id = 600; insert into ${db}.items (id, v) values (999999, 0)`);
      expect((await runVerify(cfg, { source: 'maria', sink: 'replica' })).equal).toBe(false);
      const snap = await exitOf(cdc(['snapshot', `${db}.items`, '-c', file]));
      expect(snap.code).toBe(0);
      expect(snap.out).toMatch(/rows re-read/);
      await expectEqual();
    } finally {
      stop = true;
      await load.catch(() => undefined);
      redis.disconnect();
      p.kill('SIGTERM');
      await new Promise((r) => p.once('exit', r));
    }
  }, 300_000);
});
