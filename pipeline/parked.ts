import type { Kafka } from 'kafkajs';
import type { PipelineConfig, SourceConfig } from '../config/schema.js';
import type { ChangeEvent } from '../schemas/change-event.js';
import { jsonCodec } from '../schemas/codec/json.js';
import type { EventCodec } from '../schemas/codec/types.js';
import { ConfigError } from '../schemas/errors.js';
import type { Logger } from '../util/log.js';
import { readTopicToEnd } from './checkpoint.js';
import { createPublisher } from './publisher.js';
import { topicPrefix } from './source-runner.js';
import { ensureTopics, sourceTopics, tableTopicSpec } from './topics.js';

/**
 * Events of tables the publisher stopped (a TableError, e.g. a schema change the registry
 * refused) sit in `<prefix>.<source>.parked`, JSON-encoded. These helpers list them and replay
 * them into their table topics once the cause is fixed. Replayed offsets are remembered per
 * table in the compacted `<prefix>.<source>.parked-replayed`, so a replay is not repeated.
 */

export interface ParkedRecord {
  offset: bigint;
  table: string;
  /** The table topic the event was meant for. */
  topic: string;
  code: string;
  reason: string;
  event: ChangeEvent;
}

export function parkedTopics(cfg: PipelineConfig, source: SourceConfig) {
  const prefix = sourceTopics(topicPrefix(cfg), source.name).prefix;
  return { parked: `${prefix}.parked`, replayed: `${prefix}.parked-replayed` };
}

/** Every parked record of a source (decoded), oldest first. */
export async function readParked(kafka: Kafka, cfg: PipelineConfig, source: SourceConfig): Promise<ParkedRecord[]> {
  const json = jsonCodec();
  const raw: { offset: bigint; key: string; headers: Record<string, string>; value: Buffer | null }[] = [];
  await readTopicToEnd(kafka, parkedTopics(cfg, source).parked, (m) => {
    const headers = Object.fromEntries(Object.entries(m.headers ?? {}).map(([k, v]) => [k, String(v)]));
    raw.push({ offset: BigInt(m.offset), key: m.key?.toString() ?? '', headers, value: m.value });
  });
  const out: ParkedRecord[] = [];
  for (const r of raw) {
    const event = await json.decodeChange({ key: null, value: r.value, headers: r.headers });
    if (event === null) continue;
    out.push({ offset: r.offset, table: r.key, topic: r.headers['cdc.parked.topic'] ?? '', code: r.headers['cdc.parked.code'] ?? '', reason: r.headers['cdc.parked.reason'] ?? '', event });
  }
  return out;
}

/** Last replayed parked offset per table. */
export async function replayedOffsets(kafka: Kafka, cfg: PipelineConfig, source: SourceConfig): Promise<Map<string, bigint>> {
  const out = new Map<string, bigint>();
  await readTopicToEnd(kafka, parkedTopics(cfg, source).replayed, (m) => {
    if (m.key && m.value) out.set(m.key.toString(), BigInt(m.value.toString()));
  });
  return out;
}

/**
 * Publishes a table's parked events (those not replayed before) to its topic with `codec`, in
 * their original order, then records how far it got. Run it with the source stopped, after the
 * cause is fixed (e.g. the subject's compatibility set to NONE); the next start resumes the table
 * after them. Replayed events carry no transaction block: their transaction was completed without
 * them, so sinks apply them as standalone changes (per-key order is kept by the partitioning).
 * If the codec still refuses the table, nothing more is published and the error is thrown.
 */
export async function replayParked(o: { kafka: Kafka; cfg: PipelineConfig; source: SourceConfig; table: string; codec: EventCodec; log: Logger; batchSize?: number }): Promise<{ replayed: number; alreadyReplayed: number }> {
  const { kafka, cfg, source, table } = o;
  const topics = parkedTopics(cfg, source);
  const done = (await replayedOffsets(kafka, cfg, source)).get(table) ?? -1n;
  const all = (await readParked(kafka, cfg, source)).filter((r) => r.table === table);
  if (all.length === 0) throw new ConfigError([`--table: no parked events for table "${table}" of source ${source.name}`]);
  const todo = all.filter((r) => r.offset > done);
  const publisher = await createPublisher({
    kafka,
    codec: o.codec,
    topics: sourceTopics(topicPrefix(cfg), source.name),
    sourceName: source.name,
    topicSpec: tableTopicSpec(cfg.kafka),
    tombstones: cfg.kafka.tombstones,
    tableErrors: 'throw',
  });
  const admin = kafka.admin();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  try {
    await Promise.all([admin.connect(), producer.connect()]);
    await ensureTopics(admin, { [topics.replayed]: { partitions: 1, replicationFactor: cfg.kafka.replicationFactor, compact: true } });
    const size = o.batchSize ?? 500;
    for (let i = 0; i < todo.length; i += size) {
      const batch = todo.slice(i, i + size);
      await publisher.publish({ records: batch.map((r) => ({ type: 'change', event: { ...r.event, transaction: null } })), checkpoint: null });
      // Marked after Kafka has the events: a crash in between replays them again (same
      // positions, which sinks apply idempotently), never skips them.
      await producer.send({ topic: topics.replayed, acks: -1, messages: [{ key: table, value: batch.at(-1)!.offset.toString() }] });
      o.log.info({ table, replayed: i + batch.length, of: todo.length }, 'replaying parked events');
    }
  } finally {
    await Promise.allSettled([publisher.close(), admin.disconnect(), producer.disconnect()]);
  }
  return { replayed: todo.length, alreadyReplayed: all.length - todo.length };
}
