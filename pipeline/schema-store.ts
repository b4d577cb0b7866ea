import { createHash, randomUUID } from 'node:crypto';
import type { Admin, Consumer, Kafka, Producer } from 'kafkajs';
import type { SchemaStore } from '../schemas/codec/types.js';
import { CdcError, PoisonRecordError } from '../schemas/errors.js';
import type { TableSchema } from '../schemas/table-schema.js';
import { logger } from '../util/log.js';
import { type TopicSpec, ensureTopics } from './topics.js';

export interface KafkaSchemaStoreOptions {
  kafka: Kafka;
  /** Compacted topic holding every table schema the pipeline's JSON records refer to. */
  topic: string;
  /** Replication of that topic (it gets one partition and cleanup.policy=compact). */
  topicSpec: TopicSpec;
  /** Longest wait to read the topic to its end. @defaultValue 60000 */
  readTimeoutMs?: number;
}

export type KafkaSchemaStore = Required<SchemaStore>;

/** `sha256:<base64url>` of the schema's JSON text: the same text always gets the same name. */
export function schemaRef(text: string): string {
  return `sha256:${createHash('sha256').update(text).digest('base64url')}`;
}

/**
 * Table schemas by reference, in a compacted Kafka topic (key = reference, value = the schema's
 * JSON), so a JSON record carries a ~50-byte `cdc.schema.ref` header instead of the ~2 KB schema
 * (what Confluent's registry does for Avro, without a registry to run).
 *
 * `put` writes a schema once per process and resolves when Kafka acknowledged it (acks=all): a
 * record that refers to it is encoded only after that, so every reader that sees the record finds
 * the schema in the topic. `get` of an unknown reference reads the topic to its end once (calls
 * that arrive meanwhile share that read); a reference still missing then is a poison record.
 */
export function kafkaSchemaStore(o: KafkaSchemaStoreOptions): KafkaSchemaStore {
  const schemas = new Map<string, TableSchema>();
  const writes = new Map<string, Promise<void>>();
  let admin: Admin | null = null;
  let producer: Producer | null = null;
  let ready: Promise<void> | null = null;
  let reading: Promise<void> | null = null;
  let closed = false;
  const readTimeoutMs = o.readTimeoutMs ?? 60_000;

  const connectAdmin = async (): Promise<Admin> => {
    if (!admin) {
      const a = o.kafka.admin();
      await a.connect();
      admin = a;
    }
    return admin;
  };

  const prepare = (): Promise<void> =>
    (ready ??= (async () => {
      const a = await connectAdmin();
      await ensureTopics(a, { [o.topic]: { ...o.topicSpec, partitions: 1, compact: true } });
      const p = o.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 5_000 } });
      await p.connect();
      producer = p;
    })().catch((err: unknown) => {
      ready = null;
      throw err;
    }));

  async function readToEnd(): Promise<void> {
    const a = await connectAdmin();
    let ends: { partition: number; high: string }[];
    try {
      ends = await a.fetchTopicOffsets(o.topic);
    } catch (err) {
      if ((err as { type?: string }).type === 'UNKNOWN_TOPIC_OR_PARTITION') return;
      throw new CdcError(`cannot read the schema topic ${o.topic}: ${(err as Error).message}`, { retriable: true, cause: err });
    }
    const want = new Map(ends.filter((e) => Number(e.high) > 0).map((e) => [e.partition, Number(e.high)]));
    if (want.size === 0) return;
    // kafkajs reads only through a consumer group: a throwaway one, deleted afterwards.
    const groupId = `cdc-schema-reader-${randomUUID()}`;
    const consumer: Consumer = o.kafka.consumer({ groupId, allowAutoTopicCreation: false, maxWaitTimeInMs: 200 });
    try {
      await consumer.connect();
      await consumer.subscribe({ topic: o.topic, fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new CdcError(`schema topic ${o.topic} not read to its end within ${readTimeoutMs} ms`, { retriable: true })), readTimeoutMs);
        consumer
          .run({
            autoCommit: false,
            eachBatch: async ({ batch }) => {
              for (const m of batch.messages) {
                const ref = m.key?.toString();
                if (ref && m.value && !schemas.has(ref)) {
                  try {
                    schemas.set(ref, JSON.parse(m.value.toString('utf8')) as TableSchema);
                  } catch {
                    logger().warn({ topic: o.topic, offset: m.offset }, 'unreadable record in the schema topic: skipped');
                  }
                }
                const need = want.get(batch.partition);
                if (need !== undefined && Number(m.offset) + 1 >= need) want.delete(batch.partition);
              }
              if (want.size === 0) {
                clearTimeout(timer);
                resolve();
              }
            },
          })
          .catch((err: unknown) => {
            clearTimeout(timer);
            reject(err);
          });
      });
    } finally {
      await consumer.disconnect().catch(() => undefined);
      await a.deleteGroups([groupId]).catch(() => undefined);
    }
  }

  return {
    async put(schema) {
      const text = JSON.stringify(schema);
      const ref = schemaRef(text);
      let w = writes.get(ref);
      if (!w) {
        // Read from the topic: already durable.
        if (schemas.has(ref)) return ref;
        w = (async () => {
          await prepare();
          await producer!.send({ topic: o.topic, acks: -1, messages: [{ key: ref, value: text }] });
          schemas.set(ref, schema);
        })();
        writes.set(ref, w);
        w.catch(() => writes.delete(ref));
      }
      await w;
      return ref;
    },
    async get(ref) {
      if (closed) throw new CdcError('schema store is closed', { retriable: false });
      for (;;) {
        const known = schemas.get(ref);
        if (known) return known;
        // A read already under way may have taken the topic's end before this schema was written:
        // only a read started now is conclusive.
        const fresh = reading === null;
        reading ??= readToEnd().finally(() => {
          reading = null;
        });
        try {
          await reading;
        } catch (err) {
          throw err instanceof CdcError ? err : new CdcError(`cannot read the schema topic ${o.topic}: ${(err as Error).message}`, { retriable: true, cause: err });
        }
        if (fresh) break;
      }
      const s = schemas.get(ref);
      if (!s) throw new PoisonRecordError(`record refers to schema ${ref}, which is not in ${o.topic}`);
      return s;
    },
    async close() {
      closed = true;
      const p = producer as Producer | null;
      const a = admin as Admin | null;
      producer = null;
      admin = null;
      ready = null;
      await Promise.allSettled([p?.disconnect(), a?.disconnect()]);
    },
  };
}
