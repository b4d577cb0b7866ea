import { type Admin, type Batch, type Consumer, type IHeaders, type Kafka, type KafkaMessage, type PartitionAssigner, PartitionAssigners } from 'kafkajs';
import type { SinkConfig } from '../config/schema.js';
import type { EventCodec } from '../schemas/codec/types.js';
import { isRetriable, PoisonRecordError } from '../schemas/errors.js';
import { OffsetFenceError, OldRowPendingError } from '../sinks/errors.js';
import { type ApplyHooks, type DeadLetter, partitionKey, type Sink, type SinkChange } from '../sinks/index.js';
import type { Logger } from '../util/log.js';
import { counter, gauge } from '../util/metrics.js';
import { retry, type RetryOptions, sleep } from '../util/retry.js';
import { recordBalancedAssigner } from './assigner.js';
import type { DeadLetterRecord, DeadLetterWriter } from './dead-letter.js';
import type { SourceTopics } from './topics.js';

/**
 * The consuming side shared by both sink modes: which topics a sink reads, decoding, dead
 * letters, and the replica-stored offsets (the replica is the authority; Kafka's committed offsets
 * are written only so lag shows in the usual tools).
 */

export interface SinkConsumerOptions {
  kafka: Kafka;
  codec: EventCodec;
  sink: Sink;
  cfg: SinkConfig;
  /** Kafka consumer group: the sink's `group`, else `cdc-sink-<pipeline>-<sink>` ({@link sinkGroupId}). */
  groupId: string;
  /** Topics of each source the sink applies. */
  sources: SourceTopics[];
  dlq: DeadLetterWriter;
  log: Logger;
  signal: AbortSignal;
  /** Backoff for replica / Kafka failures (tests pass faster values). */
  retry?: Partial<RetryOptions>;
  /** Kafka group session timeout: how long a dead worker keeps its partitions. @defaultValue 30000 */
  sessionTimeoutMs?: number;
  /** Most bytes fetched per partition and request (tests use small values). @defaultValue 4 MiB (key mode), 2 MiB (transaction mode) */
  maxBytesPerPartition?: number;
}

/** Key mode's fetches: up to 4 MiB per partition and request, a broker waits up to 500 ms for data. */
export const KEY_MODE_FETCH = { maxBytesPerPartition: 4 * 1024 * 1024, maxWaitTimeInMs: 500 };

/** A sink's consumer group: its own `group`, else one per pipeline and sink (two pipelines with a sink of the same name must not share partitions). */
export function sinkGroupId(pipeline: string, sink: Pick<SinkConfig, 'name' | 'group'>): string {
  return sink.group ?? `cdc-sink-${pipeline}-${sink.name}`;
}

/** Pause before a batch whose key change waits for its old row is fetched again. */
const OLD_ROW_RETRY_MS = 100;

const consumed = counter('cdc_sink_records_total', 'Kafka records consumed by sinks', ['sink']);
const lagGauge = gauge('cdc_sink_lag_records', 'Records between the applied offset and the end of the partition', ['sink', 'topic', 'partition']);

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Matches the table topics of the given sources: `<prefix>.<db>.<table>` or
 * `<prefix>.<db>.<schema>.<table>` (topic parts never contain dots). A source's own topics
 * (transaction, heartbeat, schema-history, parked) have one part after the prefix.
 */
export function tableTopicMatcher(sources: SourceTopics[]): (topic: string) => number {
  const res = sources.map((s) => new RegExp(`^${escapeRe(s.prefix)}\\.[^.]+\\.[^.]+(\\.[^.]+)?$`));
  return (topic) => res.findIndex((re) => re.test(topic));
}

export async function listTableTopics(admin: Admin, sources: SourceTopics[]): Promise<Set<string>> {
  const match = tableTopicMatcher(sources);
  return new Set((await admin.listTopics()).filter((t) => match(t) >= 0));
}

/**
 * Record headers as strings. Consecutive records of a table carry the same (kilobyte-sized)
 * schema header: the last bytes and their string are kept per header name and reused when equal,
 * which saves decoding it, and the codec's schema cache hashing a new string, per record.
 */
const lastHeader = new Map<string, { raw: Buffer; text: string }>();

export function headerMap(h: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) return out;
  for (const k in h) {
    const v = h[k];
    if (v === undefined) continue;
    const one = Array.isArray(v) ? v[v.length - 1] : v;
    if (one === undefined) continue;
    if (typeof one === 'string') {
      out[k] = one;
      continue;
    }
    if (one.length > 256) {
      const last = lastHeader.get(k);
      if (last && last.raw.equals(one)) {
        out[k] = last.text;
        continue;
      }
      const text = one.toString();
      lastHeader.set(k, { raw: Buffer.from(one), text });
      out[k] = text;
      continue;
    }
    out[k] = one.toString();
  }
  return out;
}

export interface Decoded {
  changes: SinkChange[];
  poison: DeadLetterRecord[];
  /** Messages by `partition/offset`, to find the original record of a dead letter. */
  messages: Map<string, KafkaMessage>;
}

/** Decodes a run of one partition's messages; tombstones are skipped, undecodable records are poison. */
export async function decodeMessages(codec: EventCodec, topic: string, partition: number, messages: KafkaMessage[]): Promise<Decoded> {
  const changes: SinkChange[] = [];
  const poison: DeadLetterRecord[] = [];
  let byRef: Map<string, KafkaMessage> | undefined;
  const out: Decoded = {
    changes,
    poison,
    // Built when asked (a dead letter needs its original record): most batches never ask.
    get messages() {
      byRef ??= new Map(messages.map((m) => [`${partition}/${m.offset}`, m]));
      return byRef;
    },
  };
  for (const m of messages) {
    if (m.value === null) continue;
    try {
      const r = { key: m.key ?? null, value: m.value, headers: headerMap(m.headers) };
      let event = codec.decodeCached?.(r);
      if (event === undefined) event = await codec.decodeChange(r);
      if (event) changes.push({ event, ref: { topic, partition, offset: m.offset } });
    } catch (err) {
      // Not the record's fault (e.g. the schema topic could not be read now): retry the batch.
      if (isRetriable(err)) throw err;
      const isPoison = err instanceof PoisonRecordError;
      poison.push({ topic, partition, message: m, reason: (err as Error).message, code: isPoison ? 'UNDECODABLE' : 'DECODE_ERROR' });
    }
  }
  return out;
}

/** A hook that sends a sink's dead letters to the DLQ, with the original records. */
export function deadLetterHooks(dlq: DeadLetterWriter, messages: (topic: string) => Map<string, KafkaMessage>): ApplyHooks {
  return {
    async deadLetter(items: DeadLetter[]) {
      const records: DeadLetterRecord[] = [];
      for (const d of items) {
        const m = messages(d.ref.topic).get(`${d.ref.partition}/${d.ref.offset}`);
        if (m) records.push({ topic: d.ref.topic, partition: d.ref.partition, message: m, reason: d.reason, code: d.code });
      }
      await dlq.write(records);
    },
  };
}

/** Offsets of a partition range, for seeking an empty replica to the start of a partition. */
async function lowWatermark(admin: Admin, topic: string, partition: number): Promise<string> {
  const offs = await admin.fetchTopicOffsets(topic);
  return offs.find((o) => o.partition === partition)?.low ?? '0';
}

/** The messages at or after `offset` (a batch's offsets increase): no BigInt per message, no copy when all are. */
export function fromOffset(messages: KafkaMessage[], offset: string): KafkaMessage[] {
  const at = BigInt(offset);
  let i = 0;
  while (i < messages.length && BigInt(messages[i]!.offset) < at) i++;
  return i === 0 ? messages : messages.slice(i);
}

function chunksOf<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

class Abandon extends Error {}

/**
 * kafkajs's own errors (a rebalance seen by `heartbeat()`, a lost coordinator) must reach kafkajs,
 * which rejoins the group; they say nothing about the replica or the records.
 */
export function isKafkaJsError(err: unknown): boolean {
  return err instanceof Error && err.name.startsWith('KafkaJS');
}

/**
 * Watches the sources' table topics and runs `start(topics)` for the current set; restarts it
 * when new topics appear (kafkajs resolves a subscription's topics once, at subscribe time).
 */
export async function withTopicRefresh(
  o: Pick<SinkConsumerOptions, 'kafka' | 'sources' | 'cfg' | 'log' | 'signal'>,
  extraTopics: string[],
  start: (topics: string[]) => Promise<{ stop(): Promise<void>; failed: Promise<never>; refreshRequested?: () => Promise<void> }>,
): Promise<void> {
  const admin = o.kafka.admin();
  await admin.connect();
  try {
    while (!o.signal.aborted) {
      const topics = await listTableTopics(admin, o.sources);
      if (topics.size === 0) {
        await sleep(Math.min(o.cfg.topicRefreshIntervalMs, 2000), o.signal).catch(() => undefined);
        continue;
      }
      const existing = new Set(await admin.listTopics());
      const extras = extraTopics.filter((t) => existing.has(t));
      const running = await start([...topics, ...extras].sort());
      o.log.info({ topics: topics.size }, 'sink consuming');
      let refresh: 'new-topics' | 'abort' = 'abort';
      try {
        refresh = await new Promise<'new-topics' | 'abort'>((resolve, reject) => {
          const onAbort = () => resolve('abort');
          o.signal.addEventListener('abort', onAbort, { once: true });
          running.failed.catch(reject);
          const poll = async () => {
            while (!o.signal.aborted) {
              await Promise.race([sleep(o.cfg.topicRefreshIntervalMs, o.signal).catch(() => undefined), running.refreshRequested?.() ?? new Promise(() => undefined)]);
              if (o.signal.aborted) return;
              try {
                const now = await listTableTopics(admin, o.sources);
                const extrasNow = extraTopics.filter((t) => !extras.includes(t));
                const newExtras = extrasNow.length > 0 ? (await admin.listTopics()).filter((t) => extrasNow.includes(t)) : [];
                if ([...now].some((t) => !topics.has(t)) || newExtras.length > 0) {
                  o.signal.removeEventListener('abort', onAbort);
                  resolve('new-topics');
                  return;
                }
              } catch (err) {
                o.log.warn({ err: (err as Error).message }, 'cannot list topics; retrying');
              }
            }
          };
          void poll();
        });
      } finally {
        await running.stop();
      }
      if (refresh === 'abort') return;
      o.log.info('new table topics: restarting the sink consumer');
    }
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * Key mode: a consumer group over every table topic of the sink's sources. Each partition's
 * records are applied in offset order, in batches of `batchSize`, each batch in one replica
 * transaction that also stores the partition's next offset (fenced). Several workers in one group
 * split the partitions; a dead worker's partitions move to the others after the session timeout,
 * and the new owner resumes at the offset the replica stored.
 */
/** The group consumer of a sink worker (read_committed, session timeout from the options). */
export function sinkKafkaConsumer(o: SinkConsumerOptions, fetch: { maxBytesPerPartition: number; maxWaitTimeInMs: number }, assigners?: PartitionAssigner[]): Consumer {
  const sessionTimeout = o.sessionTimeoutMs ?? 30_000;
  return o.kafka.consumer({
    groupId: o.groupId,
    sessionTimeout,
    heartbeatInterval: Math.max(500, Math.floor(sessionTimeout / 10)),
    maxBytesPerPartition: o.maxBytesPerPartition ?? fetch.maxBytesPerPartition,
    maxWaitTimeInMs: fetch.maxWaitTimeInMs,
    allowAutoTopicCreation: false,
    readUncommitted: false,
    ...(assigners ? { partitionAssigners: assigners } : {}),
  });
}

export async function runKeyConsumer(o: SinkConsumerOptions): Promise<void> {
  const { kafka, sink, cfg, log, signal } = o;
  const retryOpts: Partial<RetryOptions> = {
    ...o.retry,
    signal,
    retriable: (err) => isRetriable(err) && !(err instanceof OffsetFenceError),
    onRetry: (err, attempt, delay) => log.warn({ err: (err as Error).message, attempt, delayMs: delay }, 'apply failed; retrying'),
  };

  await withTopicRefresh(o, [], async (topics) => {
    const admin = kafka.admin();
    // Workers split the partitions by records, not by count (pipeline/assigner.ts); round robin for older members.
    const consumer: Consumer = sinkKafkaConsumer(o, KEY_MODE_FETCH, [
      recordBalancedAssigner(admin, o.groupId, log),
      PartitionAssigners.roundRobin,
    ]);
    /** Next offset the replica holds per partition (null: none stored); absent: not loaded yet. */
    const stored = new Map<string, string | null>();
    /** Partitions checked against the replica since the last assignment. */
    const checked = new Set<string>();
    let fatal: ((err: unknown) => void) | null = null;
    const failed = new Promise<never>((_, reject) => (fatal = reject));
    failed.catch(() => undefined);
    let lastKafkaCommit = 0;
    /** Key changes waiting for their old row: since when, per partition and first offset. */
    const waiting = new Map<string, number>();
    /** Offsets applied since the last Kafka commit. */
    const applied = new Map<string, { topic: string; partition: number; offset: string }>();

    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      stored.clear();
      checked.clear();
      applied.clear();
      log.info({ memberId: e.payload.memberId, assignment: e.payload.memberAssignment }, 'sink partitions assigned');
    });
    consumer.on(consumer.events.CRASH, (e) => {
      if (!e.payload.restart) fatal?.(e.payload.error);
    });

    await Promise.all([consumer.connect(), admin.connect()]);
    await consumer.subscribe({ topics, fromBeginning: true });

    const loadStored = async (topic: string, partition: number): Promise<string | null> => {
      const k = partitionKey(topic, partition);
      if (!stored.has(k)) {
        const m = await retry(() => sink.storedOffsets([{ topic, partition }]), retryOpts);
        stored.set(k, m.get(k) ?? null);
      }
      return stored.get(k)!;
    };

    const eachBatch = async ({ batch, heartbeat, isRunning, isStale, resolveOffset }: { batch: Batch; heartbeat(): Promise<void>; isRunning(): boolean; isStale(): boolean; resolveOffset(o: string): void }) => {
      const { topic, partition } = batch;
      const k = partitionKey(topic, partition);
      if (batch.messages.length === 0) return;
      /** Fetch this partition again from `offset` a little later (a key change waits for its old row). */
      const waitFor = (waitKey: string, offset: string, why: string) => {
        if (!waiting.has(waitKey)) {
          if (waiting.size > 10_000) waiting.clear();
          waiting.set(waitKey, Date.now());
          log.info({ topic, partition, offset }, why);
        }
        consumer.pause([{ topic, partitions: [partition] }]);
        consumer.seek({ topic, partition, offset });
        setTimeout(() => consumer.resume([{ topic, partitions: [partition] }]), OLD_ROW_RETRY_MS).unref();
      };
      let expected = await loadStored(topic, partition);
      // The replica decides where to resume: seek there if Kafka's position differs (ahead: the
      // replica lost work, e.g. restored from a backup; behind: Kafka's committed offsets lag).
      if (!checked.has(k)) {
        checked.add(k);
        const target = expected ?? (await lowWatermark(admin, topic, partition));
        if (BigInt(batch.firstOffset()!) !== BigInt(target) && BigInt(batch.lastOffset()) + 1n !== BigInt(target)) {
          log.info({ topic, partition, from: batch.firstOffset(), to: target }, 'seeking to the offset the replica stored');
          consumer.seek({ topic, partition, offset: target });
          return;
        }
      }
      const fresh = expected === null ? batch.messages : fromOffset(batch.messages, expected);
      const skipped = batch.messages.length - fresh.length;
      // Records the replica already has: let kafkajs move past them, or it fetches them again forever.
      if (skipped > 0) resolveOffset(batch.messages[skipped - 1]!.offset);
      if (fresh.length === 0) return;
      const parts = chunksOf(fresh, cfg.batchSize);
      for (let i = 0; i < parts.length; i++) {
        if (!isRunning() || isStale() || signal.aborted) return;
        const part = parts[i]!;
        const last = part[part.length - 1]!;
        // The last chunk also covers control records at the end of the batch.
        const next = (i === parts.length - 1 ? BigInt(batch.lastOffset()) + 1n : BigInt(last.offset) + 1n).toString();
        const decoded = await decodeMessages(o.codec, topic, partition, part);
        consumed.inc({ sink: cfg.name }, part.length);
        try {
          if (decoded.poison.length > 0) {
            for (const p of decoded.poison) log.warn({ topic, partition, offset: p.message.offset, reason: p.reason }, 'undecodable record sent to the dead-letter topic');
            await retry(() => o.dlq.write(decoded.poison), retryOpts);
          }
          const hooks = deadLetterHooks(o.dlq, () => decoded.messages);
          const from = expected;
          const waitKey = `${k}@${part[0]!.offset}`;
          const since = waiting.get(waitKey);
          const waitForOldRows = since === undefined || Date.now() - since < cfg.keyChangeWaitMs;
          if (!waitForOldRows) {
            log.warn({ topic, partition, offset: part[0]!.offset, waitedMs: Date.now() - since! }, 'key change: the old row never reached the replica; writing the new row without the columns the source did not send');
          }
          // A key change that waits for its old row stops the part there: the changes before it
          // are applied (other partitions may wait for them), the rest is fetched again later.
          let upTo: string | null = null;
          let res: Awaited<ReturnType<typeof sink.apply>>;
          for (;;) {
            const end = upTo;
            const changes = end === null ? decoded.changes : decoded.changes.filter((c) => BigInt(c.ref.offset) < BigInt(end));
            try {
              res = await retry(async () => {
                if (!isRunning() || isStale()) throw new Abandon();
                await heartbeat();
                return sink.apply({ changes, offsets: [{ topic, partition, expected: from, next: end ?? next }], waitForOldRows }, hooks);
              }, retryOpts);
              break;
            } catch (err) {
              if (!(err instanceof OldRowPendingError) || BigInt(err.offset) <= BigInt(part[0]!.offset)) throw err;
              upTo = err.offset;
            }
          }
          waiting.delete(waitKey);
          if (res.deadLettered > 0) log.warn({ topic, partition, count: res.deadLettered }, 'changes sent to the dead-letter topic');
          if (upTo !== null) {
            expected = upTo;
            stored.set(k, upTo);
            resolveOffset((BigInt(upTo) - 1n).toString());
            waitFor(`${k}@${upTo}`, upTo, 'waiting for the old row of a key change (the changes before it are applied)');
            return;
          }
        } catch (err) {
          if (err instanceof Abandon) return;
          if (isKafkaJsError(err)) {
            log.info({ topic, partition, err: (err as Error).message }, 'batch abandoned: the consumer group is rebalancing');
            throw err;
          }
          if (err instanceof OldRowPendingError) {
            // The old row of a key change is in a partition not applied this far: fetch this
            // part again a little later, letting the other partitions go on meanwhile.
            waitFor(`${k}@${part[0]!.offset}`, part[0]!.offset, `waiting for the old row of a key change: ${err.message}`);
            return;
          }
          if (err instanceof OffsetFenceError) {
            // Another worker applied this partition: resume where the replica says.
            stored.delete(k);
            const now = (await loadStored(topic, partition)) ?? (await lowWatermark(admin, topic, partition));
            log.warn({ topic, partition, resumeAt: now }, 'offset fence: another worker applied this partition; seeking');
            consumer.seek({ topic, partition, offset: now });
            return;
          }
          if (isRetriable(err) || signal.aborted) return;
          log.error({ err: (err as Error).message, topic, partition }, 'sink failed permanently');
          fatal?.(err);
          throw err;
        }
        expected = next;
        stored.set(k, next);
        resolveOffset(last.offset);
      }
      const high = batch.highWatermark;
      if (expected !== null) lagGauge.set({ sink: cfg.name, topic, partition: String(partition) }, Math.max(0, Number(BigInt(high) - BigInt(expected))));
      // Kafka's committed offsets follow the replica's (every partition this worker applied), for lag tools only.
      if (expected !== null) applied.set(k, { topic, partition, offset: expected });
      if (Date.now() - lastKafkaCommit > 5000 && applied.size > 0) {
        lastKafkaCommit = Date.now();
        consumer.commitOffsets([...applied.values()]).catch(() => undefined);
        applied.clear();
      }
    };

    await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: cfg.concurrency, eachBatch });
    return {
      failed,
      async stop() {
        await consumer.disconnect().catch(() => undefined);
        await admin.disconnect().catch(() => undefined);
      },
    };
  });
}
