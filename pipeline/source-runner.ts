import type { Kafka } from 'kafkajs';
import type { PipelineConfig, SourceConfig } from '../config/schema.js';
import type { SourceConnector } from '../connectors/source.js';
import type { EventCodec } from '../schemas/codec/types.js';
import type { Logger } from '../util/log.js';
import { retry } from '../util/retry.js';
import { loadCheckpoint } from './checkpoint.js';
import { createPublisher } from './publisher.js';
import { createWindowHook } from './snapshot/incremental.js';
import { resumeInitialSnapshot } from './snapshot/initial.js';
import { pipelineTopics, sourceTopics, tableTopicSpec } from './topics.js';

export function topicPrefix(cfg: PipelineConfig): string {
  return cfg.kafka.topicPrefix ?? cfg.name;
}

/**
 * Runs one source connector into Kafka until `signal` aborts: validates the source server,
 * publishes every batch through an idempotent producer, and restarts the connector with backoff
 * after a retriable failure (server restart, Kafka unavailable). Permanent failures reject.
 */
export async function runSource(opts: {
  cfg: PipelineConfig;
  source: SourceConfig;
  connector: SourceConnector;
  kafka: Kafka;
  codec: EventCodec;
  log: Logger;
  signal: AbortSignal;
  /** Write each batch and its checkpoint in one Kafka transaction. */
  transactional?: boolean;
}): Promise<void> {
  const { cfg, source, connector, kafka, log, signal } = opts;
  const offsetsTopic = pipelineTopics(topicPrefix(cfg)).offsets;
  await connector.validate();
  const publisher = await createPublisher({
    kafka,
    codec: opts.codec,
    topics: sourceTopics(topicPrefix(cfg), source.name),
    sourceName: source.name,
    offsetsTopic,
    topicSpec: tableTopicSpec(cfg.kafka),
    tombstones: cfg.kafka.tombstones,
    transactional: opts.transactional ?? false,
  });
  const windows = createWindowHook(cfg, source);
  // An initial snapshot interrupted by a crash finishes in watermark windows while we stream.
  const resuming = resumeInitialSnapshot(cfg, source, log, signal).catch((err: unknown) => {
    if (!signal.aborted) log.error({ err: (err as Error).message }, 'resuming the interrupted initial snapshot failed');
  });
  try {
    await retry(
      async () => {
        if (signal.aborted) return;
        await connector.run({
          // Incremental snapshots: watermark windows are resolved in log order before publishing.
          publish: (batch) => (windows ? windows.publish(batch, (b) => publisher.publish(b)) : publisher.publish(batch)),
          loadCheckpoint: () => loadCheckpoint(kafka, offsetsTopic, source.name),
          log,
          signal,
        });
      },
      {
        signal,
        onRetry: (err, attempt, delay) => log.warn({ err: (err as Error).message, attempt, delayMs: delay }, 'source failed; restarting'),
      },
    );
  } finally {
    await connector.close();
    await publisher.close();
    await resuming;
    await windows?.close();
  }
}
