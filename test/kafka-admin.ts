import type { Kafka } from 'kafkajs';
import { kafkaSchemaStore } from '../pipeline/schema-store.js';
import { pipelineTopics } from '../pipeline/topics.js';
import { jsonCodec } from '../schemas/codec/json.js';
import type { EventCodec } from '../schemas/codec/types.js';

/** Kafka admin chores shared by the source harnesses. */

async function withAdmin<T>(kafka: Kafka, fn: (admin: ReturnType<Kafka['admin']>) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

/** Waits until every topic exists; the error lists the missing ones and the prefix's existing ones. */
export function waitForTopicsOn(kafka: Kafka, topics: string[], timeoutMs = 60_000): Promise<void> {
  return withAdmin(kafka, async (admin) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const have = new Set(await admin.listTopics());
      if (topics.every((t) => have.has(t))) return;
      if (Date.now() > deadline) {
        const prefix = topics[0]!.split('.')[0]!;
        throw new Error(`topics never appeared: ${topics.filter((t) => !have.has(t)).join(', ')} (there are: ${[...have].filter((t) => t.startsWith(prefix)).join(', ')})`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  });
}

/** Creates a topic ahead of the connector (e.g. with a larger max.message.bytes for 1 MB rows). */
export function createTopicOn(kafka: Kafka, topic: string, partitions: number, configs: Record<string, string> = {}): Promise<void> {
  return withAdmin(kafka, async (admin) => {
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions, configEntries: Object.entries(configs).map(([name, value]) => ({ name, value })) }], waitForLeaders: true });
  });
}

/** Deletes every topic that starts with `prefix.` (test clean-up). */
export function deleteTopicsOn(kafka: Kafka, prefix: string): Promise<void> {
  return withAdmin(kafka, async (admin) => {
    const mine = (await admin.listTopics()).filter((t) => t.startsWith(`${prefix}.`));
    if (mine.length > 0) await admin.deleteTopics({ topics: mine }).catch(() => undefined);
  });
}

/**
 * JSON codecs for reading a pipeline's topics in tests, one per topic prefix (the first part of a
 * topic name, as the tests name them): records that name their schema by reference
 * (`cdc.schema.ref`) resolve it from that prefix's `<prefix>.schemas` topic.
 */
export function topicCodecs(kafka: Kafka): (topic: string) => EventCodec {
  const codecs = new Map<string, EventCodec>();
  return (topic) => {
    const prefix = topic.split('.')[0]!;
    let c = codecs.get(prefix);
    if (!c) codecs.set(prefix, (c = jsonCodec({ store: kafkaSchemaStore({ kafka, topic: pipelineTopics(prefix).schemas, topicSpec: { partitions: 1, replicationFactor: 1 } }) })));
    return c;
  };
}
