import type { Admin, IHeaders, Kafka, KafkaMessage, Producer } from 'kafkajs';
import { CdcError } from '../schemas/errors.js';
import { ensureTopics, type TopicSpec } from './topics.js';

/** Headers a dead-lettered record carries beside its original key, value and headers. */
export const DLQ_HEADER = {
  reason: 'cdc.dlq.reason',
  code: 'cdc.dlq.code',
  sink: 'cdc.dlq.sink',
  topic: 'cdc.dlq.topic',
  partition: 'cdc.dlq.partition',
  offset: 'cdc.dlq.offset',
  at: 'cdc.dlq.at',
} as const;

export interface DeadLetterRecord {
  topic: string;
  partition: number;
  message: KafkaMessage;
  reason: string;
  code: string;
}

export interface DeadLetterWriter {
  readonly topic: string;
  /** Resolves once Kafka acknowledged every record (acks=all). */
  write(records: DeadLetterRecord[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * Writes records a sink cannot apply to `<prefix>.dlq.<sink>` (Kafka Connect's
 * `errors.deadletterqueue.*`): the original key, value and headers unchanged, plus headers with
 * the reason and where the record came from, so it can be inspected, fixed and replayed.
 */
export async function createDeadLetterWriter(kafka: Kafka, o: { topic: string; sink: string; spec: TopicSpec }): Promise<DeadLetterWriter> {
  const producer: Producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    // An idempotent producer must not give up; the sink waits (its batch uncommitted) until Kafka is back.
    retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 5_000 },
  });
  const admin: Admin = kafka.admin();
  await Promise.all([producer.connect(), admin.connect()]);
  try {
    await ensureTopics(admin, { [o.topic]: o.spec });
  } finally {
    await admin.disconnect();
  }
  return {
    topic: o.topic,
    async write(records) {
      if (records.length === 0) return;
      const at = new Date().toISOString();
      try {
        await producer.send({
          topic: o.topic,
          acks: -1,
          messages: records.map((r) => {
            const headers: IHeaders = { ...(r.message.headers ?? {}) };
            headers[DLQ_HEADER.reason] = r.reason.slice(0, 2000);
            headers[DLQ_HEADER.code] = r.code;
            headers[DLQ_HEADER.sink] = o.sink;
            headers[DLQ_HEADER.topic] = r.topic;
            headers[DLQ_HEADER.partition] = String(r.partition);
            headers[DLQ_HEADER.offset] = r.message.offset;
            headers[DLQ_HEADER.at] = at;
            return { key: r.message.key, value: r.message.value, headers };
          }),
        });
      } catch (err) {
        throw new CdcError(`dead-letter topic ${o.topic}: ${(err as Error).message}`, { retriable: true, code: 'KAFKA', cause: err });
      }
    },
    async close() {
      await producer.disconnect().catch(() => undefined);
    },
  };
}
