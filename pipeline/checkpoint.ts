import { randomUUID } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { decodePosition, type SourcePosition } from '../schemas/position.js';

/**
 * Reads a whole topic from the beginning up to its end as of the call (read_committed, so
 * records of aborted or open transactions are skipped), then stops. For small metadata topics:
 * checkpoints, schema history.
 */
export async function readTopicToEnd(
  kafka: Kafka,
  topic: string,
  onMessage: (m: KafkaMessage, partition: number) => void | Promise<void>,
  opts: { idleMs?: number; timeoutMs?: number } = {},
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  let ends: Map<number, bigint>;
  try {
    if (!(await admin.listTopics()).includes(topic)) return;
    const offsets = await admin.fetchTopicOffsets(topic);
    ends = new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
  } finally {
    await admin.disconnect();
  }
  const pending = new Set([...ends].filter(([, high]) => high > 0n).map(([p]) => p));
  if (pending.size === 0) return;

  const consumer = kafka.consumer({ groupId: `cdc-reader-${randomUUID()}`, readUncommitted: false, allowAutoTopicCreation: false });
  await consumer.connect();
  try {
    await new Promise<void>((resolve, reject) => {
      const idleMs = opts.idleMs ?? 3000;
      let idle: NodeJS.Timeout | undefined;
      const overall = setTimeout(() => reject(new Error(`timed out reading ${topic} to its end`)), opts.timeoutMs ?? 60_000);
      const finish = () => {
        clearTimeout(overall);
        if (idle) clearTimeout(idle);
        resolve();
      };
      // A partition whose last records are transaction markers never delivers an offset at its
      // high watermark; the consumer then reports no lag, and a short idle wait ends the read.
      const armIdle = () => {
        if (idle) clearTimeout(idle);
        idle = setTimeout(finish, idleMs);
      };
      consumer
        .subscribe({ topic, fromBeginning: true })
        .then(() =>
          consumer.run({
            eachBatchAutoResolve: true,
            eachBatch: async ({ batch }) => {
              for (const m of batch.messages) await onMessage(m, batch.partition);
              const end = ends.get(batch.partition) ?? 0n;
              if (BigInt(batch.lastOffset()) + 1n >= end || batch.offsetLag() === '0') pending.delete(batch.partition);
              if (pending.size === 0) finish();
              else armIdle();
            },
          }),
        )
        .then(armIdle)
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
}

/** Latest checkpoint stored for a source in the offsets topic, or null. */
export async function loadCheckpoint(kafka: Kafka, offsetsTopic: string, sourceName: string): Promise<SourcePosition | null> {
  let last: string | null = null;
  await readTopicToEnd(kafka, offsetsTopic, (m) => {
    if (m.key?.toString() === sourceName) last = m.value === null ? null : m.value.toString();
  });
  return last === null ? null : decodePosition(last);
}
