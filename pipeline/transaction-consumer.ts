import type { Admin, Batch, Consumer, KafkaMessage } from 'kafkajs';
import { CdcError, PoisonRecordError } from '../schemas/errors.js';
import { type OffsetAdvance, partitionKey, type SinkChange, type SinkTransaction } from '../sinks/index.js';
import { counter } from '../util/metrics.js';
import { sleep } from '../util/retry.js';
import { decodeMessages, deadLetterHooks, fromOffset, headerMap, type SinkConsumerOptions, sinkKafkaConsumer, tableTopicMatcher, withTopicRefresh } from './consumer.js';
import { type BufferedChange, type Step, TransactionMerger } from './transaction-merger.js';

const txApplied = counter('cdc_sink_transactions_total', 'Source transactions applied atomically (transaction mode)', ['sink']);

/**
 * Transaction mode: one active consumer reads every table topic and the transaction topic of the
 * sink's sources, re-assembles source transactions (TransactionMerger) and applies each one
 * atomically, in source commit order. Consecutive small transactions share one replica
 * transaction (up to `batchSize` events): a reader sees several whole transactions appear at
 * once, never a part of one. A transaction larger than that is applied in chunks inside one open
 * replica transaction, so memory holds at most `maxBufferedEvents` per partition.
 *
 * Any failure (replica down, fence, rebalance) abandons the open replica transaction and the
 * consumer restarts from the offsets the replica stored.
 */
export async function runTransactionConsumer(o: SinkConsumerOptions): Promise<void> {
  const { kafka, sink, cfg, log, signal } = o;
  const tableSource = tableTopicMatcher(o.sources);
  const txTopics = o.sources.map((s) => s.transaction);

  await withTopicRefresh(o, txTopics, async (topics) => {
    const consumer: Consumer = sinkKafkaConsumer(o, { maxBytesPerPartition: 2 * 1024 * 1024, maxWaitTimeInMs: 200 });
    const admin: Admin = kafka.admin();
    const mergers = o.sources.map((s) => new TransactionMerger(partitionKey(s.transaction, 0)));
    const stored = new Map<string, string | null>();
    const checked = new Set<string>();
    const where = new Map<string, { topic: string; partition: number }>();
    const paused = new Set<string>();
    /** Original records of buffered / applied-but-uncommitted changes, for the dead-letter topic. */
    const originals = new Map<string, Map<string, KafkaMessage>>();
    let joins = 0;
    let running = true;
    let fail!: (err: unknown) => void;
    const failed = new Promise<never>((_, reject) => (fail = reject));
    failed.catch(() => undefined);
    let wake: () => void = () => undefined;
    const woken = () => new Promise<void>((r) => (wake = r));
    let refresh: () => void = () => undefined;
    const refreshRequested = () => new Promise<void>((r) => (refresh = r));

    const stop = (err: unknown) => {
      if (!running) return;
      running = false;
      fail(err);
      wake();
    };

    consumer.on(consumer.events.GROUP_JOIN, () => {
      // The merge state belongs to one assignment: a rebalance restarts from the stored offsets.
      if (++joins > 1) stop(new CdcError('consumer group rebalanced; restarting transaction mode from the stored offsets', { retriable: true, code: 'REBALANCE' }));
    });
    consumer.on(consumer.events.CRASH, (e) => {
      if (!e.payload.restart) stop(e.payload.error);
    });

    await Promise.all([consumer.connect(), admin.connect()]);
    await consumer.subscribe({ topics, fromBeginning: true });

    const sourceOf = (topic: string): number => {
      const t = txTopics.indexOf(topic);
      return t >= 0 ? t : tableSource(topic);
    };

    const eachBatch = async ({ batch }: { batch: Batch }) => {
      if (!running || batch.messages.length === 0) return;
      const { topic, partition } = batch;
      const k = partitionKey(topic, partition);
      where.set(k, { topic, partition });
      if (!stored.has(k)) stored.set(k, (await sink.storedOffsets([{ topic, partition }])).get(k) ?? null);
      const expected = stored.get(k) ?? null;
      if (!checked.has(k)) {
        checked.add(k);
        const target = expected ?? (await admin.fetchTopicOffsets(topic)).find((x) => x.partition === partition)?.low ?? '0';
        if (BigInt(batch.firstOffset()!) !== BigInt(target) && BigInt(batch.lastOffset()) + 1n !== BigInt(target)) {
          consumer.seek({ topic, partition, offset: target });
          return;
        }
      }
      const msgs = expected === null ? batch.messages : fromOffset(batch.messages, expected);
      const src = sourceOf(topic);
      const merger = mergers[src];
      if (!merger) return;
      if (txTopics[src] === topic) {
        for (const m of msgs) {
          try {
            merger.pushTransaction(await o.codec.decodeTransaction({ key: m.key ?? null, value: m.value, headers: headerMap(m.headers) }), BigInt(m.offset));
          } catch (err) {
            if (!(err instanceof PoisonRecordError)) throw err;
            log.error({ topic, offset: m.offset, err: err.message }, 'undecodable transaction record sent to the dead-letter topic; its transaction cannot be assembled');
            await o.dlq.write([{ topic, partition, message: m, reason: err.message, code: 'UNDECODABLE' }]);
          }
        }
        if (merger.queuedTransactions() > cfg.maxBufferedEvents && !paused.has(k)) {
          consumer.pause([{ topic, partitions: [partition] }]);
          paused.add(k);
        }
      } else {
        const decoded = await decodeMessages(o.codec, topic, partition, msgs);
        if (decoded.poison.length > 0) await o.dlq.write(decoded.poison);
        let orig = originals.get(topic);
        if (!orig) originals.set(topic, (orig = new Map()));
        for (const [key, m] of decoded.messages) orig.set(key, m);
        // Every record takes its place in the buffer, so the stored offset can pass records with
        // nothing to apply (delete tombstones, dead letters) once they reach the head.
        const byOffset = new Map(decoded.changes.map((c) => [c.ref.offset, c]));
        merger.pushChanges(
          k,
          msgs.map((m): BufferedChange => ({ change: byOffset.get(m.offset) ?? null, offset: BigInt(m.offset) })),
        );
        if (merger.buffered(k) > cfg.maxBufferedEvents && !paused.has(k)) {
          consumer.pause([{ topic, partitions: [partition] }]);
          paused.add(k);
        }
      }
      wake();
    };

    const hooks = deadLetterHooks(o.dlq, (topic) => originals.get(topic) ?? new Map());

    const applier = async () => {
      // In a holder: TypeScript does not follow assignments made in the loop into the catch block.
      const open: { tx: SinkTransaction | null } = { tx: null };
      let pending = 0;
      let handed: { topic: string; key: string }[] = [];
      let idleSince = Date.now();
      try {
        while (running && !signal.aborted) {
          let progressed = false;
          // Everything ready, up to batchSize changes, goes to the replica as one chunk: a chunk of
          // many small source transactions costs one round of statements, not one per transaction.
          const chunk: SinkChange[] = [];
          for (const m of mergers) {
            let step: Step | null;
            // A chunk ends between transactions when it can: the replica transaction commits only
            // there, so a chunk boundary inside every small transaction would never commit. Past
            // batchSize, the current transaction is finished (up to another batchSize events; a
            // larger one spans chunks on its own).
            const room = () => (chunk.length < cfg.batchSize ? cfg.batchSize - chunk.length : m.midTransaction && chunk.length < 2 * cfg.batchSize ? 2 * cfg.batchSize - chunk.length : 0);
            while (room() > 0 && (step = m.next(room())) !== null) {
              for (const c of step.changes) {
                chunk.push(c);
                handed.push({ topic: c.ref.topic, key: `${c.ref.partition}/${c.ref.offset}` });
              }
              if (step.kind === 'transaction' && step.complete) txApplied.inc({ sink: cfg.name });
              progressed = true;
            }
          }
          if (progressed) open.tx ??= await sink.begin(hooks);
          if (chunk.length > 0) await open.tx!.apply(chunk);
          pending += chunk.length;
          const mid = mergers.some((m) => m.midTransaction);
          if (open.tx && !mid && (pending >= cfg.batchSize || !progressed)) {
            const offsets: OffsetAdvance[] = [];
            const next = new Map<string, string>();
            for (const m of mergers) {
              for (const [k, off] of m.offsets()) {
                const w = where.get(k);
                const s = stored.get(k) ?? null;
                if (!w || s === off.toString()) continue;
                offsets.push({ topic: w.topic, partition: w.partition, expected: s, next: off.toString() });
                next.set(k, off.toString());
              }
            }
            const res = await open.tx.commit(offsets);
            open.tx = null;
            pending = 0;
            for (const [k, v] of next) stored.set(k, v);
            for (const h of handed) originals.get(h.topic)?.delete(h.key);
            handed = [];
            if (res.deadLettered > 0) log.warn({ count: res.deadLettered }, 'changes sent to the dead-letter topic');
          }
          // Drained partitions fetch again; when nothing could be applied, every paused one does:
          // the record the oldest transaction waits for (its END, an event) is behind a pause, and
          // a partition over its limit pauses again after one more fetch.
          for (const k of [...paused]) {
            const w = where.get(k);
            const m = mergers[sourceOf(w?.topic ?? '')];
            if (w && m && (!progressed || (m.txPartition === k ? m.queuedTransactions() : m.buffered(k)) < cfg.maxBufferedEvents / 2)) {
              consumer.resume([{ topic: w.topic, partitions: [w.partition] }]);
              paused.delete(k);
            }
          }
          if (progressed) {
            idleSince = Date.now();
            continue;
          }
          // Nothing ready: wait for records. A transaction stuck on events from a topic this
          // consumer does not read yet (a new table) triggers a topic refresh.
          const waiting = mergers.map((m) => m.waitingFor()).find((w) => w !== null && w.eventCount !== null);
          if (waiting && Date.now() - idleSince > 3000) {
            log.info({ waiting }, 'transaction incomplete; looking for new table topics');
            refresh();
            idleSince = Date.now();
          } else if (Date.now() - idleSince > 10_000 && mergers.some((m) => m.waitingFor() !== null)) {
            log.warn(
              { waiting: mergers.map((m) => m.waitingFor()), heads: mergers.map((m) => m.heads()), paused: [...paused], midTransaction: mid },
              'no transaction complete for 10 s',
            );
            idleSince = Date.now();
          }
          await Promise.race([woken(), sleep(1000)]);
        }
      } catch (err) {
        await open.tx?.rollback().catch(() => undefined);
        stop(err);
        return;
      }
      await open.tx?.rollback().catch(() => undefined);
    };

    await consumer.run({ autoCommit: false, eachBatchAutoResolve: true, partitionsConsumedConcurrently: 1, eachBatch });
    const done = applier();
    return {
      failed,
      refreshRequested,
      async stop() {
        running = false;
        wake();
        await done;
        await consumer.disconnect().catch(() => undefined);
        await admin.disconnect().catch(() => undefined);
      },
    };
  });
}
