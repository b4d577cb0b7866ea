import { createHash } from 'node:crypto';
import type { Admin, ITopicConfig } from 'kafkajs';
import type { TableId } from '../schemas/table-schema.js';

const LEGAL = /^[A-Za-z0-9_-]+$/;

/**
 * One dot-separated part of a topic name. Kafka allows only [A-Za-z0-9._-]; anything else (and
 * dots, which would be ambiguous) becomes `_`, and a short hash of the original keeps two
 * different names from landing on one topic. Sinks never parse topic names: the table identity
 * travels in each record.
 */
export function topicPart(name: string): string {
  if (LEGAL.test(name)) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `${name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 80)}_${hash}`;
}

/**
 * Topic names of one source. `prefix` is `<kafka.topicPrefix>.<source name>`, so two sources
 * with the same database name never share a topic (Debezium's per-connector `topic.prefix`).
 */
export interface SourceTopics {
  prefix: string;
  /** `<prefix>.<db>.<schema>.<table>` (MySQL: `<prefix>.<db>.<table>`). */
  table(id: TableId): string;
  /** Transaction BEGIN/END metadata. */
  transaction: string;
  heartbeat: string;
}

export function sourceTopics(topicPrefix: string, sourceName: string): SourceTopics {
  const prefix = `${topicPrefix}.${topicPart(sourceName)}`;
  return {
    prefix,
    table: (id) => [prefix, topicPart(id.db), ...(id.schema === null ? [] : [topicPart(id.schema)]), topicPart(id.table)].join('.'),
    transaction: `${prefix}.transaction`,
    heartbeat: `${prefix}.heartbeat`,
  };
}

/** Pipeline-wide topics. */
export function pipelineTopics(topicPrefix: string) {
  return {
    /** Source checkpoints, compacted, keyed by source name. */
    offsets: `${topicPrefix}.offsets`,
    /** Table schemas that JSON records name by reference (`kafka.jsonSchemas: reference`), compacted. */
    schemas: `${topicPrefix}.schemas`,
    /** Records a sink could not apply, with the reason in headers. */
    deadLetter: (sinkName: string) => `${topicPrefix}.dlq.${topicPart(sinkName)}`,
  };
}

/** Spec of the topics a pipeline creates for its tables, from the config. */
export function tableTopicSpec(kafka: { partitions: number; replicationFactor: number; maxMessageBytes: number }): TopicSpec {
  return { partitions: kafka.partitions, replicationFactor: kafka.replicationFactor, configs: { 'max.message.bytes': String(kafka.maxMessageBytes) } };
}

export interface TopicSpec {
  partitions: number;
  replicationFactor: number;
  /** compact: keep the latest record per key (offsets, schema history with care). */
  compact?: boolean;
  /** Extra topic-level configs. */
  configs?: Record<string, string>;
}

/**
 * Creates the topics that are missing; existing ones are left as they are. Safe to call
 * concurrently from several processes (TOPIC_ALREADY_EXISTS is not an error).
 */
export async function ensureTopics(admin: Admin, topics: Record<string, TopicSpec>, known?: Set<string>): Promise<void> {
  const names = Object.keys(topics).filter((t) => !known?.has(t));
  if (names.length === 0) return;
  const existing = new Set(await admin.listTopics());
  const missing: ITopicConfig[] = names
    .filter((t) => !existing.has(t))
    .map((topic) => {
      const spec = topics[topic]!;
      const configEntries = Object.entries({ ...(spec.compact ? { 'cleanup.policy': 'compact' } : {}), ...spec.configs }).map(([name, value]) => ({ name, value }));
      return { topic, numPartitions: spec.partitions, replicationFactor: spec.replicationFactor, configEntries };
    });
  if (missing.length > 0) {
    try {
      // Not kafkajs's waitForLeaders: it gives up on UNKNOWN_TOPIC_OR_PARTITION, which a KRaft
      // broker answers until the new topic's metadata has reached it.
      await admin.createTopics({ topics: missing, waitForLeaders: false });
    } catch (err) {
      // Another process may have created them between listTopics and createTopics.
      if ((err as { type?: string }).type !== 'TOPIC_ALREADY_EXISTS') throw err;
    }
    await waitForLeaders(admin, missing.map((t) => t.topic));
  }
  for (const t of names) known?.add(t);
}

/**
 * Waits until every partition of the topics has a leader, as seen by the cluster's metadata: three
 * answers in a row, since each may come from another broker, which learns of new topics later.
 */
export async function waitForLeaders(admin: Admin, topics: string[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  let good = 0;
  while (Date.now() < deadline) {
    try {
      const meta = await admin.fetchTopicMetadata({ topics });
      if (meta.topics.length === topics.length && meta.topics.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) {
        if (++good >= 3) return;
        continue;
      }
      good = 0;
    } catch (err) {
      good = 0;
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`topics ${topics.join(', ')} have no leaders after ${timeoutMs} ms${lastError ? `: ${(lastError as Error).message}` : ''}`);
}
