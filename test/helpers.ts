import { randomBytes } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { createKafka } from '../pipeline/kafka.js';

/** Endpoints of the servers infra/ starts (override with the same env vars infra reads). */
export const env = {
  kafka: process.env.CDC_KAFKA_BROKERS ?? `127.0.0.1:${process.env.CDC_KAFKA_PORT ?? 19092}`,
  pgSource: process.env.CDC_PG_SOURCE_URL ?? `postgres://postgres@127.0.0.1:${process.env.CDC_PG_SOURCE_PORT ?? 55432}/postgres`,
  pgReplica: process.env.CDC_PG_REPLICA_URL ?? `postgres://postgres@127.0.0.1:${process.env.CDC_PG_REPLICA_PORT ?? 55433}/postgres`,
  mariaSource: process.env.CDC_MARIA_SOURCE_URL ?? `mysql://root@127.0.0.1:${process.env.CDC_MARIA_SOURCE_PORT ?? 33306}`,
  mariaReplica: process.env.CDC_MARIA_REPLICA_URL ?? `mysql://root@127.0.0.1:${process.env.CDC_MARIA_REPLICA_PORT ?? 33307}`,
  redis: process.env.CDC_REDIS_URL ?? `redis://127.0.0.1:${process.env.CDC_REDIS_PORT ?? 6379}`,
};

/** A short random suffix so concurrent runs never share a topic, database or slot. */
export function uniq(prefix = 't'): string {
  return `${prefix}_${randomBytes(4).toString('hex')}`;
}

export function testKafka(brokers = env.kafka): Kafka {
  return createKafka({ brokers: brokers.split(','), clientId: 'cdc-test' });
}

/** Consumes `topic` from the beginning until `count` records arrived (or the timeout). */
export async function consumeN(kafka: Kafka, topic: string, count: number, timeoutMs = 30_000): Promise<(KafkaMessage & { partition: number })[]> {
  const consumer = kafka.consumer({ groupId: uniq('test-consumer'), allowAutoTopicCreation: false });
  const got: (KafkaMessage & { partition: number })[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out: ${got.length}/${count} records from ${topic}`)), timeoutMs);
      consumer
        .run({
          eachMessage: async ({ message, partition }) => {
            got.push({ ...message, partition });
            if (got.length >= count) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return got;
}
