// kill -9 of the MariaDB source under the connector (a dedicated instance, never the shared
// one): the connector notices, retries with backoff, resumes from its stored GTID position when
// the server is back, and loses nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pipelineConfig } from '../../config/schema.js';
import { envInt } from '../../infra/env.js';
import { mariadbServer } from '../../infra/servers.js';
import { env, uniq } from '../helpers.js';
import { type Running, changeOf, collect, deleteTopics, randomServerId, sql, startSource, topicsOf } from './harness.js';

const port = envInt('CDC_MARIA_MYKILL_PORT', 23392);
const server = mariadbServer({ name: 'maria-mykill', port, serverId: 72 });

describe('mysql source: kill -9 of the source server', () => {
  let run: Running | undefined;
  const prefix = uniq('mykill');

  beforeAll(async () => {
    await server.destroy();
    await server.start();
  }, 180_000);
  afterAll(async () => {
    await run?.stop();
    await deleteTopics(prefix);
    await server.destroy();
  }, 120_000);

  it('reconnects after the server restarts and publishes every committed row once', async () => {
    const c1 = await sql(server.url);
    await c1.query('CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(10))');
    const cfg = pipelineConfig.parse({
      name: prefix,
      kafka: { brokers: env.kafka.split(','), partitions: 3 },
      sources: [{ name: 'my', url: server.url, tables: { include: ['app.*'] }, mysql: { serverId: randomServerId(), heartbeatIntervalMs: 1000 } }],
      log: { level: 'error' },
    });
    run = startSource(cfg);
    const topic = topicsOf(cfg).table({ db: 'app', schema: null, table: 't' });
    await collect([`${prefix}.offsets`], (m) => m.length > 0);
    for (let i = 1; i <= 50; i++) await c1.query('INSERT INTO app.t VALUES (?, ?)', [i, `a${i}`]);
    await collect([topic], (m) => m.length >= 50);
    await c1.end().catch(() => undefined);

    await server.kill9();
    await new Promise((r) => setTimeout(r, 1500));
    await server.start();
    const c2 = await sql(server.url);
    for (let i = 51; i <= 100; i++) await c2.query('INSERT INTO app.t VALUES (?, ?)', [i, `b${i}`]);
    await c2.query("UPDATE app.t SET v = 'z' WHERE id <= 10");
    await c2.end();

    const msgs = await collect([topic], (m) => m.length >= 110, 120_000);
    const evs = msgs.map((m) => changeOf(m)!);
    const ids = evs.filter((e) => e.op === 'c').map((e) => e.after!.id as number);
    expect(new Set(ids).size).toBe(100);
    expect(evs.filter((e) => e.op === 'u').map((e) => e.after!.v)).toEqual(new Array(10).fill('z'));
    // Every event is there once: GTID + seq are unique.
    const keys = evs.map((e) => `${e.source.gtid}#${e.position.kind === 'mysql' ? e.position.seq : ''}`);
    expect(new Set(keys).size).toBe(keys.length);
  });
});
