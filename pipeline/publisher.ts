import type { Admin, Kafka, Message, Producer, Transaction } from 'kafkajs';
import { CompressionTypes } from 'kafkajs';
import type { SourceBatch } from '../connectors/source.js';
import type { ChangeEvent, TransactionEvent } from '../schemas/change-event.js';
import { jsonCodec } from '../schemas/codec/json.js';
import type { EventCodec, EncodedRecord } from '../schemas/codec/types.js';
import { encodePosition } from '../schemas/position.js';
import { CdcError, TableError } from '../schemas/errors.js';
import { type TableSchema, tableName } from '../schemas/table-schema.js';
import { logger } from '../util/log.js';
import { counter, gauge, histogram } from '../util/metrics.js';
import { type SourceTopics, type TopicSpec, ensureTopics } from './topics.js';

export interface PublisherOptions {
  kafka: Kafka;
  codec: EventCodec;
  topics: SourceTopics;
  /** Source name: key of its checkpoint record. */
  sourceName: string;
  /** Compacted topic that stores checkpoints; omit to not store them in Kafka. */
  offsetsTopic?: string;
  /** Partitions and replication of the table topics this publisher creates. */
  topicSpec: TopicSpec;
  /** Write a null-value record after each delete. @defaultValue true */
  tombstones?: boolean;
  /**
   * Write each batch (events + checkpoint) in one Kafka transaction, so a checkpoint is never
   * visible without its events nor events without their checkpoint to read_committed readers.
   * The transactional id fences a zombie instance of the same source. @defaultValue false
   */
  transactional?: boolean;
  /** @defaultValue gzip off: kafkajs ships only gzip natively and it costs more CPU than it saves on loopback */
  compression?: CompressionTypes;
  /**
   * Where the events of a stopped table go. A codec that throws a TableError for an event (e.g.
   * a schema change refused by the registry) stops that table only: its events from then on are
   * written here, JSON-encoded with the reason in `cdc.parked.*` headers, so none is lost and the
   * other tables keep flowing. @defaultValue `<prefix>.parked`
   */
  parkedTopic?: string;
  /** Bytes per produce request (tests). @defaultValue 900 KiB */
  requestBytes?: number;
  /** `throw` instead of parking (replaying parked events must not park them again). @defaultValue park */
  tableErrors?: 'park' | 'throw';
}

/** Bytes (keys, values, headers) per produce request: below Kafka's 1 MB default max.message.bytes. */
const DEFAULT_REQUEST_BYTES = 900 * 1024;

function messageBytes(m: Message): number {
  let n = 70; // record overhead: lengths, offsets, timestamps
  if (m.key) n += typeof m.key === 'string' ? Buffer.byteLength(m.key) : m.key.length;
  if (m.value) n += typeof m.value === 'string' ? Buffer.byteLength(m.value) : m.value.length;
  for (const [k, v] of Object.entries(m.headers ?? {})) {
    n += Buffer.byteLength(k) + 8;
    if (typeof v === 'string') n += Buffer.byteLength(v);
    else if (Buffer.isBuffer(v)) n += v.length;
    else if (Array.isArray(v)) for (const x of v) n += typeof x === 'string' ? Buffer.byteLength(x) : x.length;
  }
  return n;
}

/** Splits topic messages into consecutive groups of at most `limit` bytes, keeping their order. */
export function chunked(out: { topic: string; messages: Message[] }[], limit: number): { topic: string; messages: Message[] }[][] {
  const chunks: { topic: string; messages: Message[] }[][] = [];
  let cur: { topic: string; messages: Message[] }[] = [];
  let bytes = 0;
  for (const { topic, messages } of out) {
    let part: Message[] = [];
    for (const m of messages) {
      const b = messageBytes(m);
      if (bytes + b > limit && bytes > 0) {
        if (part.length > 0) cur.push({ topic, messages: part });
        chunks.push(cur);
        cur = [];
        part = [];
        bytes = 0;
      }
      part.push(m);
      bytes += b;
    }
    if (part.length > 0) cur.push({ topic, messages: part });
  }
  if (cur.length > 0) chunks.push(cur);
  return chunks;
}

export interface Publisher {
  /** Resolves once Kafka acknowledged every record of the batch (see SourceContext.publish). */
  publish(batch: SourceBatch): Promise<void>;
  close(): Promise<void>;
}

const published = counter('cdc_events_published_total', 'Change events acknowledged by Kafka', ['source', 'op']);
const tablesStopped = gauge('cdc_tables_stopped', 'Tables whose events are parked after a table-level failure', ['source', 'table']);
const parkedEvents = counter('cdc_events_parked_total', 'Change events written to the parked topic', ['source', 'table']);
const commitToKafka = histogram(
  'cdc_commit_to_kafka_seconds',
  'Source commit to Kafka acknowledgement',
  ['source'],
  [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
);

/**
 * A Kafka failure as a CdcError: retriable unless kafkajs says it is not. A record over the
 * topic's max.message.bytes can never succeed, so it says which setting to raise.
 */
function kafkaError(what: string, err: unknown): CdcError {
  const e = err as { message?: string; type?: string; retriable?: boolean; cause?: { type?: string } };
  if (e.type === 'MESSAGE_TOO_LARGE' || e.cause?.type === 'MESSAGE_TOO_LARGE' || /larger than the max message size/i.test(e.message ?? '')) {
    return new CdcError(`${what}: a record is larger than the topic's max.message.bytes; raise kafka.maxMessageBytes (topics created from now on) or the topic's max.message.bytes`, {
      retriable: false,
      code: 'MESSAGE_TOO_LARGE',
      cause: err,
    });
  }
  return new CdcError(`${what}: ${e.message ?? String(err)}`, { retriable: e.retriable !== false, cause: err });
}

interface Outgoing {
  topic: string;
  messages: Message[];
}

function toMessage(r: EncodedRecord, partition?: number): Message {
  return { key: r.key, value: r.value, headers: r.headers, ...(partition === undefined ? {} : { partition }) };
}

/**
 * Publishes source batches: change events to their table topics keyed by primary key (so one
 * row's changes stay in one partition, in order), transaction metadata to the single-partition
 * transaction topic (so BEGIN/END keep commit order), heartbeats, and the checkpoint last.
 *
 * The producer is idempotent with acks=all and one request in flight: retries can neither
 * duplicate nor reorder records.
 */
export async function createPublisher(o: PublisherOptions): Promise<Publisher> {
  const transactional = o.transactional ?? false;
  const producer: Producer = o.kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    // An idempotent producer must not give up: the source simply waits (and keeps its WAL /
    // binlog position) until Kafka is back.
    // Transactional: a transaction begun right after a commit often gets CONCURRENT_TRANSACTIONS
    // while the coordinator still writes the markers; retried after 200 ms that cost ~170 ms at
    // p90 per transaction (measured: 10 ms first retry -> p90 14 ms). Back-off still grows to 5 s.
    retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: transactional ? 10 : 200, maxRetryTime: 5_000 },
    ...(transactional ? { transactionalId: `cdc-source-${o.topics.prefix}`, transactionTimeout: 60_000 } : {}),
  });
  const admin: Admin = o.kafka.admin();
  await Promise.all([producer.connect(), admin.connect()]);
  const known = new Set<string>();
  const partitionCount = new Map<string, number>();
  const parkedTopic = o.parkedTopic ?? `${o.topics.prefix}.parked`;
  const parkCodec = jsonCodec();
  /** Stopped tables (tableName) and why; in memory: after a restart the cause stops it again. */
  const stopped = new Map<string, TableError>();
  /** Events parked per open source transaction, to correct its END counts for the sinks. */
  // Per table, the total_order of each parked event: a set, so a batch published again after a
  // failure does not count its parked events twice.
  const parkedInTx = new Map<string, Map<string, Set<number>>>();
  let endedTx: string[] = [];

  await ensureTopics(
    admin,
    {
      [o.topics.transaction]: { ...o.topicSpec, partitions: 1 },
      [parkedTopic]: { ...o.topicSpec, partitions: 1 },
      [o.topics.heartbeat]: { ...o.topicSpec, partitions: 1 },
      ...(o.offsetsTopic ? { [o.offsetsTopic]: { ...o.topicSpec, partitions: 1, compact: true } } : {}),
    },
    known,
  );

  async function partitionsOf(topic: string): Promise<number> {
    let n = partitionCount.get(topic);
    if (n === undefined) {
      const meta = await admin.fetchTopicMetadata({ topics: [topic] });
      n = meta.topics[0]?.partitions.length ?? 1;
      partitionCount.set(topic, n);
    }
    return n;
  }

  function stopTable(table: string, err: TableError): void {
    stopped.set(table, err);
    tablesStopped.set({ source: o.sourceName, table }, 1);
    logger().error({ source: o.sourceName, table, code: err.code, err: err.message }, `table ${table} stopped: its events go to ${parkedTopic}; other tables continue`);
  }

  async function parked(e: ChangeEvent, table: string, why: TableError): Promise<Message> {
    const enc = await parkCodec.encodeChange(e);
    parkedEvents.inc({ source: o.sourceName, table });
    if (e.transaction !== null) {
      let byTable = parkedInTx.get(e.transaction.id);
      if (!byTable) parkedInTx.set(e.transaction.id, (byTable = new Map()));
      let orders = byTable.get(table);
      if (!orders) byTable.set(table, (orders = new Set()));
      orders.add(e.transaction.total_order);
    }
    return {
      key: Buffer.from(table),
      value: enc.value,
      headers: { ...enc.headers, 'cdc.parked.topic': o.topics.table(e.schema.id), 'cdc.parked.code': why.code, 'cdc.parked.reason': why.message },
    };
  }

  /**
   * An event of a transaction that had events parked before it, with `total_order` counting only
   * the published ones: sinks assemble a transaction by consecutive total_order up to the END's
   * event_count. (A parked event keeps its original numbers.)
   */
  function renumbered(e: ChangeEvent): ChangeEvent {
    const byTable = e.transaction === null ? undefined : parkedInTx.get(e.transaction.id);
    if (!byTable || e.transaction === null) return e;
    const k = e.transaction.total_order;
    let before = 0;
    for (const orders of byTable.values()) for (const o of orders) if (o < k) before++;
    return before === 0 ? e : { ...e, transaction: { ...e.transaction, total_order: k - before } };
  }

  /** A transaction's END without the events that were parked, so sinks do not wait for them. */
  function withoutParked(t: TransactionEvent): TransactionEvent {
    const byTable = t.status === 'END' ? parkedInTx.get(t.id) : undefined;
    if (!byTable) return t;
    // Forgotten once Kafka has this END (a failed publish builds the batch again).
    endedTx.push(t.id);
    let total = 0;
    for (const orders of byTable.values()) total += orders.size;
    return {
      ...t,
      event_count: t.event_count === null ? null : t.event_count - total,
      data_collections:
        t.data_collections === null
          ? null
          : t.data_collections
              .map((d) => ({ ...d, event_count: d.event_count - (byTable.get(d.data_collection)?.size ?? 0) }))
              .filter((d) => d.event_count > 0),
    };
  }

  // Events of one table share one schema object until it changes: name its topic once.
  const names = new WeakMap<TableSchema, { topic: string; table: string }>();
  function namesOf(schema: TableSchema): { topic: string; table: string } {
    let n = names.get(schema);
    if (n === undefined) names.set(schema, (n = { topic: o.topics.table(schema.id), table: tableName(schema.id) }));
    return n;
  }

  async function build(batch: SourceBatch): Promise<{ events: Outgoing[]; checkpoint: Outgoing[] }> {
    // Map keeps first-seen topic order; records of one topic keep their relative order.
    const byTopic = new Map<string, Message[]>();
    const add = (topic: string, m: Message) => {
      let list = byTopic.get(topic);
      if (!list) byTopic.set(topic, (list = []));
      list.push(m);
    };
    const newTopics: Record<string, TopicSpec> = {};
    for (const rec of batch.records) {
      if (rec.type === 'change') {
        const { topic } = namesOf(rec.event.schema);
        if (!known.has(topic)) newTopics[topic] = o.topicSpec;
      }
    }
    if (Object.keys(newTopics).length > 0) await ensureTopics(admin, newTopics, known);

    for (const rec of batch.records) {
      switch (rec.type) {
        case 'change': {
          const e = renumbered(rec.event);
          const { topic, table } = namesOf(e.schema);
          let enc: EncodedRecord | undefined;
          if (!stopped.has(table)) {
            try {
              enc = await o.codec.encodeChange(e);
            } catch (err) {
              if (!(err instanceof TableError) || o.tableErrors === 'throw') throw err;
              stopTable(table, err);
            }
          }
          if (enc === undefined) {
            add(parkedTopic, await parked(rec.event, table, stopped.get(table)!));
            break;
          }
          if (enc.key === null) {
            if (e.op === 't') {
              // A truncate concerns every key: put it in every partition so each partition's
              // consumer sees it in order with that partition's row changes.
              const n = await partitionsOf(topic);
              for (let p = 0; p < n; p++) add(topic, toMessage(enc, p));
            } else {
              // Keyless table: one partition keeps its changes in order.
              add(topic, toMessage(enc, 0));
            }
          } else {
            add(topic, toMessage(enc));
            if (e.op === 'd' && (o.tombstones ?? true)) add(topic, { key: enc.key, value: null, headers: enc.headers });
          }
          break;
        }
        case 'transaction':
          add(o.topics.transaction, toMessage(await o.codec.encodeTransaction(withoutParked(rec.event))));
          break;
        case 'heartbeat':
          add(o.topics.heartbeat, {
            key: Buffer.from(o.sourceName),
            value: Buffer.from(JSON.stringify({ ts_ms: rec.ts_ms, position: rec.position })),
          });
          break;
      }
    }
    const events = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
    const checkpoint =
      batch.checkpoint !== null && o.offsetsTopic
        ? [{ topic: o.offsetsTopic, messages: [{ key: Buffer.from(o.sourceName), value: Buffer.from(encodePosition(batch.checkpoint)) }] }]
        : [];
    return { events, checkpoint };
  }

  async function send(target: Producer | Transaction, out: Outgoing[]): Promise<void> {
    // One request per chunk, in order: each partition's record batch stays under the broker's
    // default max.message.bytes even on topics created elsewhere (a record larger than that goes
    // alone, and only the topic's own limit decides).
    for (const chunk of chunked(out, o.requestBytes ?? DEFAULT_REQUEST_BYTES)) {
      await target.sendBatch({ topicMessages: chunk, acks: -1, ...(o.compression ? { compression: o.compression } : {}) });
    }
  }

  function observe(batch: SourceBatch): void {
    const now = Date.now();
    for (const rec of batch.records) {
      if (rec.type !== 'change') continue;
      published.inc({ source: o.sourceName, op: rec.event.op });
      if (rec.event.source.snapshot === 'false') commitToKafka.observe({ source: o.sourceName }, (now - rec.event.source.ts_ms) / 1000);
    }
  }

  let closed = false;
  // Non-transactional: a batch's checkpoint rides with the next batch's events (one round trip
  // per batch instead of two; it only says that earlier, acknowledged events are in Kafka), or
  // goes alone after a quiet second, or at close. Writes are chained: one request at a time.
  let pendingCheckpoint: Outgoing[] = [];
  let checkpointTimer: NodeJS.Timeout | null = null;
  let chain: Promise<void> = Promise.resolve();
  const serially = (task: () => Promise<void>): Promise<void> => {
    const p = chain.then(task);
    chain = p.catch(() => undefined);
    return p;
  };
  /**
   * Sends the pending checkpoint (its events are acknowledged already; first, so a newer checkpoint
   * in `out` lands after it), then `out`; `next` becomes the pending one once Kafka has them. A
   * failure keeps the pending checkpoint for the next try.
   */
  const sendCarrying = (out: Outgoing[], next: Outgoing[]): Promise<void> =>
    serially(async () => {
      const cp = pendingCheckpoint;
      pendingCheckpoint = [];
      try {
        await send(producer, [...cp, ...out]);
      } catch (err) {
        if (pendingCheckpoint.length === 0) pendingCheckpoint = cp;
        throw err;
      }
      pendingCheckpoint = next;
    });

  return {
    async publish(batch) {
      if (closed) throw new CdcError('publisher is closed', { retriable: false });
      endedTx = [];
      const { events, checkpoint } = await build(batch);
      if (transactional) {
        const tx = await producer.transaction();
        try {
          await send(tx, [...events, ...checkpoint]);
          await tx.commit();
        } catch (err) {
          await tx.abort().catch(() => undefined);
          throw kafkaError('Kafka transaction failed', err);
        }
      } else {
        if (checkpointTimer) clearTimeout(checkpointTimer);
        checkpointTimer = null;
        try {
          // The checkpoint is sent only after its batch's events are acknowledged: a failure in
          // between leaves the stored checkpoint behind the events (replay), never ahead (loss).
          // A batch without events has nothing to wait for: its checkpoint goes now.
          await (events.length === 0 ? sendCarrying(checkpoint, []) : sendCarrying(events, checkpoint));
        } catch (err) {
          throw kafkaError('Kafka publish failed', err);
        }
        if (pendingCheckpoint.length > 0) {
          checkpointTimer = setTimeout(() => {
            checkpointTimer = null;
            sendCarrying([], []).catch((err: unknown) => logger().warn({ source: o.sourceName, err: (err as Error).message }, 'writing the checkpoint failed; the next batch carries it'));
          }, 1000);
          checkpointTimer.unref();
        }
      }
      for (const id of endedTx) parkedInTx.delete(id);
      observe(batch);
    },
    async close() {
      if (closed) return;
      closed = true;
      if (checkpointTimer) clearTimeout(checkpointTimer);
      await sendCarrying([], []).catch(() => undefined);
      await Promise.allSettled([producer.disconnect(), admin.disconnect()]);
    },
  };
}
