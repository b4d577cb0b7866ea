import { describe, expect, it } from 'vitest';
import { RunStore } from '../../pipeline/jobs/progress.js';
import { redisConnection } from '../../pipeline/jobs/queues.js';
import { runVerify } from '../../pipeline/jobs/verify.js';
import { sleep } from '../../util/retry.js';
import { env } from '../helpers.js';
import { cdc, exec, exitOf, pipelineFixture, settle, workload } from './support.js';

describe('cdc snapshot TABLE through cdc run (PostgreSQL -> Kafka -> PostgreSQL)', () => {
  const { setup, run, expectEqual } = pipelineFixture();

  it('cdc snapshot TABLE re-syncs a corrupted replica table while the pipeline streams the others', async () => {
    const tables = ['items', 'others'];
    const s = await setup(tables, 8000, 'snapshot: { target: direct, chunkRows: 4000, incrementalChunkRows: 1500 }');
    const p = run(s.file);
    const load = workload(s.src, tables, 100_001, 8000);
    try {
      const redis = redisConnection(env.redis);
      try {
        const store = new RunStore(redis, s.cfg.name);
        for (let i = 0; i < 1200; i++) {
          const r = (await store.list(5)).find((x) => x.kind === 'snapshot');
          if (r?.status === 'done') break;
          await sleep(100);
        }
      } finally {
        redis.disconnect();
      }
      await settle(s.cfg, s.src, s.slot);
      // Corrupt the replica behind the pipeline's back: a changed cell, a missing row, an extra row.
      await exec(s.replica, `update items set note = 'corrupt' where id = 4321; delete from items where id = 1234; insert into items (id, v, note) values (999999, 0, 'extra')`);
      const bad = await runVerify(s.cfg, { source: 'pg', sink: 'replica', tables: [{ db: s.db, schema: 'public', table: 'items' }] });
      expect(bad.equal).toBe(false);

      const snap = await exitOf(cdc(['snapshot', 'public.items', '-c', s.file]));
      expect(snap.err).not.toMatch(/error/i);
      expect(snap.code).toBe(0);
      expect(snap.out).toMatch(/rows re-read/);

      // The other table kept streaming during the re-snapshot.
      await exec(s.src, `insert into others (id, v, note) values (777777, 7, 'after the snapshot')`);
      const writes = await load.stop();
      expect(writes).toBeGreaterThan(20);
      await settle(s.cfg, s.src, s.slot);
      await expectEqual(s.cfg, tables);
      expect((await exec(s.replica, `select note from others where id = 777777`)).rows[0]?.note).toBe('after the snapshot');
    } finally {
      await load.stop().catch(() => undefined);
      p.kill('SIGTERM');
      await exitOf(p);
    }
  });
});
