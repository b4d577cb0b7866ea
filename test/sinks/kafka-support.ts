import type { Kafka } from 'kafkajs';
import { type PipelineConfig, pipelineConfig } from '../../config/schema.js';
import type { SourceRecord } from '../../connectors/source.js';
import { createCodec } from '../../pipeline/codec.js';
import { createPublisher, type Publisher } from '../../pipeline/publisher.js';
import { runSink } from '../../pipeline/sink-runner.js';
import { sourceTopics } from '../../pipeline/topics.js';
import type { ChangeEvent, TransactionEvent } from '../../schemas/change-event.js';
import { createLogger } from '../../util/log.js';
import { TEST_RETRY } from '../../util/retry.js';
import { env, stoppable, testKafka, uniq } from '../helpers.js';

/** A pipeline config for one test: its own topic prefix, one (unused) source, and the given sinks. */
export function testPipeline(sinks: Record<string, unknown>[], o: { partitions?: number; sourceUrl?: string; sources?: string[] } = {}): PipelineConfig {
  const prefix = uniq('sk');
  return pipelineConfig.parse({
    name: prefix,
    kafka: { brokers: [env.kafka], topicPrefix: prefix, partitions: o.partitions ?? 3 },
    sources: (o.sources ?? ['src']).map((name) => ({ name, url: o.sourceUrl ?? env.pgSource })),
    sinks,
  });
}

/** A publisher with the pipeline's own codec (JSON, schemas by reference unless the config says otherwise). */
export async function testPublisher(kafka: Kafka, cfg: PipelineConfig, source = 'src'): Promise<Publisher> {
  const codec = createCodec(cfg, kafka);
  const p = await createPublisher({
    kafka,
    codec,
    topics: sourceTopics(cfg.kafka.topicPrefix ?? cfg.name, source),
    sourceName: source,
    topicSpec: { partitions: cfg.kafka.partitions, replicationFactor: 1 },
  });
  return {
    publish: (b) => p.publish(b),
    async close() {
      await p.close();
      await codec.close?.();
    },
  };
}

/** Runs sink `name` of the config in this process until `stop()`. */
export function startSink(cfg: PipelineConfig, name: string, kafka: Kafka = testKafka(), sessionTimeoutMs = 10_000, extra: { maxBytesPerPartition?: number } = {}) {
  const ac = new AbortController();
  const sink = cfg.sinks.find((s) => s.name === name)!;
  const log = createLogger(process.env.CDC_LOG_LEVEL ?? 'error').child({ sink: name });
  const codec = createCodec(cfg, kafka);
  const done = runSink({ cfg, sink, kafka, codec, log, signal: ac.signal, retry: TEST_RETRY, sessionTimeoutMs, ...extra }).finally(() => codec.close?.());
  return stoppable(done, ac);
}

/** Wraps changes of one source transaction with BEGIN/END records and transaction blocks. */
export function asTransaction(id: string, events: ChangeEvent[], source = 'src'): SourceRecord[] {
  const per = new Map<string, number>();
  const out: SourceRecord[] = [];
  const pos = events[0]?.position ?? { kind: 'pg' as const, lsn: '0/0' };
  const ts = events[0]?.source.ts_ms ?? Date.now();
  const begin: TransactionEvent = { status: 'BEGIN', id, event_count: null, data_collections: null, ts_ms: ts, source, position: pos };
  out.push({ type: 'transaction', event: begin });
  events.forEach((e, i) => {
    const coll = `${e.schema.id.db}.${e.schema.id.schema ?? ''}.${e.schema.id.table}`;
    const n = (per.get(coll) ?? 0) + 1;
    per.set(coll, n);
    e.transaction = { id, total_order: i + 1, data_collection_order: n };
    e.source.txId = id;
    out.push({ type: 'change', event: e });
  });
  const end: TransactionEvent = {
    status: 'END',
    id,
    event_count: events.length,
    data_collections: [...per].map(([data_collection, event_count]) => ({ data_collection, event_count })),
    ts_ms: ts,
    source,
    position: pos,
  };
  out.push({ type: 'transaction', event: end });
  return out;
}
