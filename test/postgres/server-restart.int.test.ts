// The source server dies (kill -9) and comes back while the connector streams: the connector
// retries with backoff, resumes from its slot and loses nothing. Uses a dedicated PostgreSQL
// (never the shared source server).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PipelineConfig } from '../../config/schema.js';
import { envInt } from '../../infra/env.js';
import { postgresServer } from '../../infra/servers.js';
import { type Running, changes, deleteTopics, readAll, sleep, startSource, testConfig, topicsOf } from './harness.js';

const server = postgresServer({ name: 'pg-fault-pgsource', port: envInt('CDC_PG_FAULT_PGSOURCE_PORT', 55497) });

describe('postgres source: source server killed and restarted', () => {
  let cfg: PipelineConfig;
  let src: Running | undefined;
  const url = `postgres://postgres@127.0.0.1:${server.port}/cdcfault`;

  beforeAll(async () => {
    await server.start();
    const admin = new pg.Client(server.url);
    await admin.connect();
    await admin.query('drop database if exists cdcfault with (force)');
    await admin.query('create database cdcfault');
    await admin.end();
    const c = new pg.Client(url);
    await c.connect();
    await c.query('create table ev (id int primary key, at timestamptz default now())');
    await c.end();
  }, 180_000);

  afterAll(async () => {
    await src?.stop();
    if (cfg) await deleteTopics(cfg.name);
    await server.stop();
  });

  it('streams every committed row across a kill -9 of PostgreSQL', async () => {
    cfg = testConfig({ name: 'cdcfault', url }, { postgres: { slot: 'cdcfault', publication: 'cdcfault', statusIntervalMs: 1000 } });
    src = startSource(cfg);
    const q = async (text: string, params: unknown[] = []) => {
      const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
      c.on('error', () => undefined);
      await c.connect();
      try {
        return (await c.query(text, params)).rows as Record<string, unknown>[];
      } finally {
        await c.end().catch(() => undefined);
      }
    };
    for (let i = 0; (await q(`select 1 from pg_replication_slots where slot_name = 'cdcfault' and active`)).length === 0; i++) {
      if (i > 300) throw new Error('no slot');
      await sleep(100);
    }

    // Single-row autocommit inserts; an insert whose outcome is unknown (connection lost) is
    // looked up after the restart.
    let id = 0;
    const write = async (n: number) => {
      for (let k = 0; k < n; k++) {
        id++;
        await q('insert into ev (id) values ($1)', [id]).catch(() => undefined);
      }
    };
    await write(200);
    const killer = (async () => {
      await sleep(100);
      await server.kill9();
    })();
    await write(100); // some of these fail while the server is down
    await killer;
    await server.start();
    await write(200);

    const rows = (await q('select id from ev order by id')).map((r) => Number(r.id));
    expect(rows.length).toBeGreaterThan(300);
    const end = String((await q('select pg_current_wal_lsn()::text as l'))[0]!.l);
    for (let i = 0; ; i++) {
      const [s] = await q(`select (confirmed_flush_lsn >= $1::pg_lsn)::text as ok from pg_replication_slots where slot_name = 'cdcfault'`, [end]);
      if (s?.ok === 'true') break;
      if (i > 600) throw new Error('connector did not catch up after the restart');
      await sleep(100);
    }
    const ev = await changes(await readAll([topicsOf(cfg).table({ db: 'cdcfault', schema: 'public', table: 'ev' })]));
    const got = [...new Set(ev.map((e) => Number(e.after!.id)))].sort((a, b) => a - b);
    expect(got).toEqual(rows);
  });
});
