// A replication connection that goes silent without closing (half-open TCP, a frozen network
// path) must be given up on and replaced, not waited on forever. A TCP proxy between the
// connector and PostgreSQL freezes the live connection; the server side is ended as
// wal_sender_timeout would end it; the connector must reconnect and stream what was written.
import { type Server, type Socket, createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PipelineConfig } from '../../config/schema.js';
import { env } from '../helpers.js';
import { type Running, type TestDb, changes, createTestDb, deleteTopics, dropTestDb, readAll, sleep, startSource, testConfig, topicsOf } from './harness.js';

interface Proxy {
  port: number;
  /** Stops forwarding on every connection open now, leaving the sockets open. */
  freeze(): void;
  close(): Promise<void>;
}

async function proxy(targetPort: number): Promise<Proxy> {
  const { createConnection } = await import('node:net');
  const pairs: [Socket, Socket][] = [];
  const frozen: [Socket, Socket][] = [];
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    client.pipe(upstream);
    upstream.pipe(client);
    const swallow = () => undefined;
    client.on('error', swallow);
    upstream.on('error', swallow);
    pairs.push([client, upstream]);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    freeze() {
      for (const [a, b] of pairs.splice(0)) {
        frozen.push([a, b]);
        a.unpipe(b);
        b.unpipe(a);
        a.pause();
        b.pause();
      }
    },
    async close() {
      for (const [a, b] of [...pairs, ...frozen]) {
        a.destroy();
        b.destroy();
      }
      await new Promise((r) => server.close(r));
    },
  };
}

describe('postgres source: silent replication connection', () => {
  let db: TestDb;
  let cfg: PipelineConfig;
  let src: Running | undefined;
  let px: Proxy;

  beforeAll(async () => {
    db = await createTestDb('t_silent');
    await db.q('create table t (id int primary key)');
    px = await proxy(Number(new URL(env.pgSource).port));
  });

  afterAll(async () => {
    await src?.stop();
    await px?.close();
    await dropTestDb(db);
    if (cfg) await deleteTopics(cfg.name);
  });

  it('notices the silence, reconnects and streams on', async () => {
    const viaProxy = new URL(db.url);
    viaProxy.port = String(px.port);
    cfg = testConfig({ name: db.name, url: viaProxy.toString() }, { postgres: { statusIntervalMs: 300 } });
    src = startSource(cfg);
    const activePid = async () => (await db.q(`select active_pid::text as p from pg_replication_slots where slot_name = $1 and active`, [db.name]))[0]?.p;
    let first: string | null | undefined;
    for (let i = 0; !(first = await activePid()); i++) {
      if (i > 200) throw new Error('no active slot');
      await sleep(100);
    }
    await db.q('insert into t values (1)');
    await sleep(500);
    px.freeze();
    await db.q('insert into t values (2)');
    // What wal_sender_timeout would do to the walsender on the other side of the frozen path.
    await sleep(500);
    await db.q('select pg_terminate_backend($1::int)', [first]);
    await db.q('insert into t values (3)');

    let second: string | null | undefined;
    for (let i = 0; (second = await activePid()) === undefined || second === first; i++) {
      if (i > 300) throw new Error('the connector never reconnected');
      await sleep(100);
    }
    const end = (await db.q('select pg_current_wal_lsn()::text as l'))[0]!.l;
    for (let i = 0; (await db.q(`select 1 from pg_replication_slots where slot_name = $1 and confirmed_flush_lsn >= $2::pg_lsn`, [db.name, end])).length === 0; i++) {
      if (i > 300) throw new Error('no catch-up after the reconnect');
      await sleep(100);
    }
    const ev = await changes(await readAll([topicsOf(cfg).table({ db: db.name, schema: 'public', table: 't' })]));
    expect([...new Set(ev.map((e) => e.after!.id))].sort()).toEqual([1, 2, 3]);
  });
});
