import { type ChildProcess, spawn } from 'node:child_process';
import * as net from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../infra/servers.js';
import { RunStore, runKey } from '../../pipeline/jobs/progress.js';
import { redisConnection } from '../../pipeline/jobs/queues.js';
import { env, uniq } from '../helpers.js';

/**
 * A chunk worker killed with -9 while it records a finished chunk must leave the run's records
 * either untouched or complete: the done set decides whether a retry redoes the chunk, the
 * counters decide when the run's coordinator is finished, so a chunk in the set but not in the
 * counters is skipped by every retry and the coordinator waits forever (the initial-snapshot
 * test's occasional 180 s timeout). The worker here talks to Redis through a proxy that forwards
 * its first write naming the run's keys, then kills the worker before anything else reaches Redis.
 */
describe('run records across kill -9 of a chunk worker', () => {
  const redis = redisConnection(env.redis);
  const pipeline = uniq('runstore');
  const store = new RunStore(redis, pipeline);
  afterAll(() => redis.disconnect());

  it('a chunk is either wholly recorded or not at all, and its retry counts it exactly once', async () => {
    const runId = 'run-1';
    const table = 'public.t';
    await store.addTable(runId, table, 4, 400);
    const upstream = new URL(env.redis);
    const doneKey = Buffer.from(`${runKey(pipeline, runId)}:done`);
    let child: ChildProcess | undefined;
    let forwardedWrite = false;
    const proxy = net.createServer((client) => {
      const up = net.connect(Number(upstream.port || 6379), upstream.hostname);
      up.pipe(client);
      client.on('data', (chunk: Buffer) => {
        if (forwardedWrite) return; // the worker is being killed: nothing more reaches Redis
        up.write(chunk);
        if (chunk.includes(doneKey)) {
          forwardedWrite = true;
          // Let Redis read the write, then the worker dies before it can send anything else.
          child?.kill('SIGKILL');
        }
      });
      const end = () => {
        client.destroy();
        up.destroy();
      };
      client.on('close', end).on('error', end);
      up.on('close', end).on('error', end);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const port = (proxy.address() as net.AddressInfo).port;
    try {
      child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'test/pipeline/chunk-done-child.ts'), `redis://127.0.0.1:${port}`, pipeline, runId, table, 't#0', '100'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      const exit = await new Promise<NodeJS.Signals | number | null>((r) => child!.once('exit', (code, signal) => r(signal ?? code)));
      expect(forwardedWrite, 'the worker never sent a write naming the run (proxy saw nothing to cut)').toBe(true);
      expect(exit).toBe('SIGKILL');
      expect(out).toBe('');
    } finally {
      await new Promise((r) => proxy.close(r));
    }

    // What the killed worker left: all or nothing.
    const inSet = await store.isChunkDone(runId, 't#0');
    const [before] = await store.tables(runId);
    expect({ inSet, chunksDone: before!.chunksDone, rowsDone: before!.rowsDone }).toEqual(inSet ? { inSet, chunksDone: 1, rowsDone: 100 } : { inSet, chunksDone: 0, rowsDone: 0 });

    // The retry, as the chunk processor does it: skip a chunk the set has, else do and record it.
    if (!(await store.isChunkDone(runId, 't#0'))) await store.chunkDone(runId, table, 't#0', 100);
    expect(await store.chunkDone(runId, table, 't#0', 100)).toBe(false);
    const [after] = await store.tables(runId);
    expect(after).toMatchObject({ chunks: 4, chunksDone: 1, rowsDone: 100 });
    await store.remove(runId);
  });
});
