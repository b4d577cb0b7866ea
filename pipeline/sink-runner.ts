import type { Kafka } from 'kafkajs';
import type { PipelineConfig, SinkConfig } from '../config/schema.js';
import type { EventCodec } from '../schemas/codec/types.js';
import { ConfigError } from '../schemas/errors.js';
import { createSink, type Sink } from '../sinks/index.js';
import type { Logger } from '../util/log.js';
import { retry, type RetryOptions, sleep } from '../util/retry.js';
import { runKeyConsumer, type SinkConsumerOptions, sinkGroupId } from './consumer.js';
import { createDeadLetterWriter } from './dead-letter.js';
import { topicPrefix } from './source-runner.js';
import { pipelineTopics, sourceTopics } from './topics.js';
import { runTransactionConsumer } from './transaction-consumer.js';

const TOMBSTONE_PURGE_MS = 10 * 60_000;

export interface RunSinkOptions {
  cfg: PipelineConfig;
  sink: SinkConfig;
  kafka: Kafka;
  codec: EventCodec;
  log: Logger;
  signal: AbortSignal;
  /** Backoff for replica and Kafka failures. */
  retry?: Partial<RetryOptions>;
  /** Kafka group session timeout. @defaultValue 30000 (CDC_SINK_SESSION_TIMEOUT_MS overrides, for tests) */
  sessionTimeoutMs?: number;
  /** Build the sink (tests inject one). */
  createSink?: (cfg: SinkConfig) => Sink;
  /** Kafka fetch size per partition (tests use small values to get many small batches). */
  maxBytesPerPartition?: number;
}

/**
 * Runs one sink until `signal` aborts: creates its bookkeeping tables, then consumes its sources'
 * topics in `key` mode (a consumer group; workers split the partitions) or `transaction` mode
 * (one active worker holding the replica lease, the others standing by). Transient failures
 * (replica or Kafka down) are retried with backoff and resume from the offsets the replica
 * stored; permanent ones reject.
 */
export async function runSink(o: RunSinkOptions): Promise<void> {
  const { cfg, kafka, log, signal } = o;
  const names = o.sink.sources ?? cfg.sources.map((s) => s.name);
  if (names.length === 0) throw new ConfigError([`sinks.${o.sink.name}.sources: no sources to apply (the config lists none)`]);
  const prefix = topicPrefix(cfg);
  const sink = (o.createSink ?? ((s) => createSink(s, { log })))(o.sink);
  const envTimeout = Number(process.env.CDC_SINK_SESSION_TIMEOUT_MS);
  const sessionTimeoutMs = o.sessionTimeoutMs ?? (Number.isFinite(envTimeout) && envTimeout > 0 ? envTimeout : 30_000);
  const retryOpts: Partial<RetryOptions> = {
    ...o.retry,
    signal,
    onRetry: (err, attempt, delay) => log.warn({ err: (err as Error).message, attempt, delayMs: delay }, 'sink failed; retrying'),
  };
  const dlq = await retry(
    () =>
      createDeadLetterWriter(kafka, {
        topic: pipelineTopics(prefix).deadLetter(o.sink.name),
        sink: o.sink.name,
        spec: { partitions: 1, replicationFactor: cfg.kafka.replicationFactor },
      }),
    { ...retryOpts, retriable: () => true },
  );
  let purger: NodeJS.Timeout | undefined;
  try {
    await retry(() => sink.start(), retryOpts);
    const purge = () => sink.purgeTombstones().catch((err: Error) => log.warn({ err: err.message }, 'tombstone purge failed'));
    void purge();
    purger = setInterval(purge, TOMBSTONE_PURGE_MS);
    purger.unref();
    const consumerOpts: SinkConsumerOptions = {
      kafka,
      codec: o.codec,
      sink,
      cfg: o.sink,
      groupId: sinkGroupId(cfg.name, o.sink),
      sources: names.map((n) => sourceTopics(prefix, n)),
      dlq,
      log,
      signal,
      retry: o.retry,
      sessionTimeoutMs,
      ...(o.maxBytesPerPartition !== undefined ? { maxBytesPerPartition: o.maxBytesPerPartition } : {}),
    };
    if (o.sink.mode === 'key') {
      await retry(() => runKeyConsumer(consumerOpts), retryOpts);
      return;
    }
    await runTransactionMode(sink, consumerOpts, retryOpts);
  } finally {
    if (purger) clearInterval(purger);
    await dlq.close();
    await sink.close();
  }
}

/** Transaction mode needs one ordered stream: one worker holds the lease, the others wait for it. */
async function runTransactionMode(sink: Sink, o: SinkConsumerOptions, retryOpts: Partial<RetryOptions>): Promise<void> {
  const { log, signal } = o;
  let standbyLogged = false;
  await retry(async () => {
    while (!signal.aborted) {
      const lease = await sink.tryLease(`cdc-sink-tx:${o.groupId}`);
      if (!lease) {
        if (!standbyLogged) log.info('another worker applies this sink (transaction mode); standing by');
        standbyLogged = true;
        await sleep(1000, signal).catch(() => undefined);
        continue;
      }
      standbyLogged = false;
      log.info('holding the transaction-mode lease; applying');
      const inner = new AbortController();
      const onAbort = () => inner.abort(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      void lease.lost.then(() => {
        if (!inner.signal.aborted) log.warn('lost the replica session holding the lease; standing by');
        inner.abort(new Error('lease lost'));
      });
      try {
        await runTransactionConsumer({ ...o, signal: inner.signal });
      } finally {
        signal.removeEventListener('abort', onAbort);
        await lease.release();
      }
    }
  }, retryOpts);
}
