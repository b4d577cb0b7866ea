import { describe, expect, it } from 'vitest';
import { RunStore } from '../../pipeline/jobs/progress.js';
import { redisConnection } from '../../pipeline/jobs/queues.js';
import { sleep } from '../../util/retry.js';
import { env } from '../helpers.js';
import { cdc, exitOf, pipelineFixture, settle, workload } from './support.js';

describe('snapshots through cdc run (PostgreSQL -> Kafka -> PostgreSQL)', () => {
  const { setup, run, expectEqual } = pipelineFixture();

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
