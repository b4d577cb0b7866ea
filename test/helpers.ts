import { randomBytes } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';
import type { PipelineConfig } from '../config/schema.js';
import type { SourceConnector } from '../connectors/source.js';
import { createKafka } from '../pipeline/kafka.js';
import { runSource } from '../pipeline/source-runner.js';
import type { EventCodec } from '../schemas/codec/types.js';
import { createLogger, type Logger } from '../util/log.js';

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

export type Msg = KafkaMessage & { topic: string; partition: number };

/**
 * Reads `topics` from the beginning (a fresh group, read_committed) until `until(all so far)`
 * holds, or fails after the timeout. `until` is asked once before the first record (with none)
 * and after each record. `before` runs once the consumer is connected (e.g. waiting for the
 * topics to exist).
 */
export async function consumeUntil(
  kafka: Kafka,
  topics: string[],
  until: (got: Msg[]) => boolean,
  o: { timeoutMs: number; group?: string; maxBytesPerPartition?: number; before?: () => Promise<void> },
): Promise<Msg[]> {
  const consumer = kafka.consumer({ groupId: uniq(o.group ?? 'test-consumer'), allowAutoTopicCreation: false, ...(o.maxBytesPerPartition ? { maxBytesPerPartition: o.maxBytesPerPartition } : {}) });
  const got: Msg[] = [];
  await consumer.connect();
  try {
    await o.before?.();
    await consumer.subscribe({ topics, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${got.length} records from ${topics.join(', ')}`)), o.timeoutMs);
      if (until(got)) {
        clearTimeout(timer);
        resolve();
        return;
      }
      consumer
        .run({
          eachMessage: async ({ topic, partition, message }) => {
            got.push({ ...message, topic, partition });
            if (until(got)) {
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

/** Consumes `topic` from the beginning until `count` records arrived (or the timeout). */
export function consumeN(kafka: Kafka, topic: string, count: number, timeoutMs = 30_000): Promise<Msg[]> {
  return consumeUntil(kafka, [topic], (got) => got.length >= count, { timeoutMs });
}

/** A running loop of a test (source or sink runner) and how to stop it: abort, then wait for it to end. */
export function stoppable<T>(done: Promise<T>, ac: AbortController): { done: Promise<T>; stop(): Promise<void> } {
  done.catch(() => undefined);
  return {
    done,
    async stop() {
      ac.abort(new Error('test done'));
      await done.catch(() => undefined);
    },
  };
}

export interface Running {
  stop(): Promise<void>;
  done: Promise<void>;
}

/** Runs a pipeline's first source with `connector` in this process, through the real source runner and publisher. */
export function runTestSource(cfg: PipelineConfig, connector: SourceConnector, kafka: Kafka, codec: EventCodec, o: { log?: Logger; transactional?: boolean } = {}): Running {
  const source = cfg.sources[0]!;
  const ac = new AbortController();
  const done = runSource({
    cfg,
    source,
    connector,
    kafka,
    codec,
    log: o.log ?? createLogger(process.env.CDC_LOG_LEVEL ?? 'error').child({ source: source.name }),
    signal: ac.signal,
    transactional: o.transactional === true,
  }).finally(() => codec.close?.());
  return stoppable(done, ac);
}

/**
 * Polls `check` every `everyMs` (a throw counts as not yet) until it holds; at the timeout throws
 * naming `what`, the last error and what `describe()` says.
 */
export async function until(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 60_000,
  o: { everyMs?: number; describe?: () => Promise<string> } = {},
): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      if (await check()) return;
      last = undefined;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, o.everyMs ?? 250));
  }
  const extra = o.describe ? await o.describe().catch((e: Error) => e.message) : '';
  throw new Error(`timed out waiting for ${what}${last ? ` (${(last as Error).message})` : ''}${extra ? `\n${extra}` : ''}`);
}
