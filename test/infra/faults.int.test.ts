// kill -9 of dedicated servers (never the shared defaults): committed data survives a restart.
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { faultServers } from '../../infra/servers.js';

describe('kafka broker kill -9', () => {
  const broker = faultServers.kafka; // kafka-fault on 19492/19493, never the shared broker
  afterAll(async () => {
    await broker.destroy();
  }, 120_000);

  it('keeps every acks=-1 message across kill -9 and restart', async () => {
    await broker.destroy(); // fresh data dir
    await broker.start();
    const kafka = new Kafka({
      clientId: 'infra-fault-test',
      brokers: [broker.url],
      logLevel: logLevel.NOTHING,
      retry: { retries: 10, initialRetryTime: 200 },
    });
    const topic = `infra-fault-${randomUUID()}`;
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
    await admin.disconnect();

    const total = 3000;
    const sent = Array.from({ length: total }, (_, i) => ({ key: `k${i % 97}`, value: `m-${i}-${randomUUID()}` }));
    const producer = kafka.producer({ idempotent: true });
    await producer.connect();
    for (let i = 0; i < total; i += 250) {
      await producer.send({ topic, acks: -1, messages: sent.slice(i, i + 250) });
    }
    await producer.disconnect();

    const pidBefore = broker.pid();
    expect(pidBefore).toBeGreaterThan(0);
    await broker.kill9();
    expect(broker.pid()).toBeUndefined();
    expect(await broker.healthy()).toBe(false);

    await expect(broker.start()).resolves.toBe('started');
    expect(broker.pid()).not.toBe(pidBefore);

    const admin2 = kafka.admin();
    await admin2.connect();
    const offsets = await admin2.fetchTopicOffsets(topic);
    await admin2.disconnect();
    expect(offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0)).toBe(total);

    const consumer = kafka.consumer({ groupId: `infra-fault-${randomUUID()}` });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const got: { key: string; value: string }[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${got.length}/${total} messages within 90 s`)), 90_000);
      void consumer.run({
        eachMessage: async ({ message }) => {
          got.push({ key: message.key?.toString() ?? '', value: message.value?.toString() ?? '' });
          if (got.length >= total) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
    await consumer.disconnect();
    const byValue = (a: { value: string }, b: { value: string }) => a.value.localeCompare(b.value);
    expect(got.length).toBe(total);
    expect([...got].sort(byValue)).toEqual([...sent].sort(byValue));
  }, 300_000);
});

describe('postgres kill -9', () => {
  const server = faultServers.pg; // pg-fault on 55499
  afterAll(async () => {
    await server.destroy();
  }, 120_000);

  it('keeps committed rows, loses the open transaction, and restarts', async () => {
    await server.destroy();
    await server.start();
    const connect = async () => {
      const c = new pg.Client({ connectionString: server.url });
      c.on('error', () => undefined); // the kill ends open connections
      await c.connect();
      return c;
    };
    const c1 = await connect();
    await c1.query('create table t (id int primary key, v text not null)');
    await c1.query("insert into t select g, md5(g::text) from generate_series(1, 10000) g");
    const before = await c1.query<{ n: string; h: string }>("select count(*) n, md5(string_agg(v, ',' order by id)) h from t");
    const open = await connect();
    await open.query('begin');
    await open.query("insert into t select g, 'uncommitted' from generate_series(10001, 10100) g");

    await server.kill9();
    expect(server.pid()).toBeUndefined();
    expect(await server.healthy()).toBe(false);
    await c1.end().catch(() => undefined);
    await open.end().catch(() => undefined);

    await expect(server.start()).resolves.toBe('started');
    const c2 = await connect();
    try {
      const after = await c2.query<{ n: string; h: string }>("select count(*) n, md5(string_agg(v, ',' order by id)) h from t");
      expect(after.rows).toEqual(before.rows);
      expect(after.rows[0]?.n).toBe('10000');
    } finally {
      await c2.end();
    }
    const log = await import('node:fs').then((fs) => fs.readFileSync(server.logFile, 'utf8'));
    expect(log).toMatch(/database system was interrupted|not properly shut down|redo/);
  }, 300_000);
});
