// The default servers come up healthy and Kafka really moves messages.
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaults, defaultServers, endpoints, ports, redisPing, startDefaults } from '../../infra/servers.js';

describe('default servers', () => {
  beforeAll(async () => {
    await startDefaults();
  }, 300_000);

  it('are all healthy after start()', async () => {
    for (const s of defaultServers) {
      expect({ name: s.name, healthy: await s.healthy() }).toEqual({ name: s.name, healthy: true });
    }
  });

  it('start() is idempotent and leaves a running server alone', async () => {
    const pid = defaults.pgSource.pid();
    expect(pid).toBeGreaterThan(0);
    await expect(defaults.pgSource.start()).resolves.toBe('already-running');
    expect(defaults.pgSource.pid()).toBe(pid);
  });

  it('exposes working endpoints', async () => {
    expect(endpoints).toMatchObject({
      kafka: `127.0.0.1:${ports.kafka}`,
      pgSource: `postgres://postgres@127.0.0.1:${ports.pgSource}/postgres`,
      mariaSource: `mysql://root@127.0.0.1:${ports.mariaSource}`,
      redis: `redis://127.0.0.1:${ports.redis}`,
    });
    const client = new pg.Client({ connectionString: endpoints.pgSource });
    await client.connect();
    try {
      const { rows } = await client.query<{ wal_level: string }>('show wal_level');
      expect(rows[0]?.wal_level).toBe('logical');
    } finally {
      await client.end();
    }
    const conn = await mysql.createConnection(endpoints.mariaSource);
    try {
      const [rows] = await conn.query('select @@log_bin as log_bin, @@binlog_format as fmt, @@server_id as id');
      expect(rows).toEqual([{ log_bin: 1, fmt: 'ROW', id: 1 }]);
    } finally {
      await conn.end();
    }
    expect(await redisPing(defaults.redis.port)).toBe(true);
  });

  describe('kafka round trip', () => {
    const kafka = new Kafka({ clientId: 'infra-test', brokers: [endpoints.kafka], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    const topic = `infra-roundtrip-${randomUUID()}`;

    beforeAll(async () => {
      await admin.connect();
      await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    });
    afterAll(async () => {
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
    });

    it('produces and consumes a message', async () => {
      const producer = kafka.producer();
      await producer.connect();
      const value = `hello ${randomUUID()}`;
      await producer.send({ topic, acks: -1, messages: [{ key: 'k1', value }] });
      await producer.disconnect();

      const consumer = kafka.consumer({ groupId: `infra-test-${randomUUID()}` });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const got = await new Promise<{ key: string; value: string }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no message within 60 s')), 60_000);
        void consumer.run({
          eachMessage: async ({ message }) => {
            clearTimeout(timer);
            resolve({ key: message.key?.toString() ?? '', value: message.value?.toString() ?? '' });
          },
        });
      });
      await consumer.disconnect();
      expect(got).toEqual({ key: 'k1', value });
    }, 120_000);
  });
});
