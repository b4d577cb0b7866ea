import { afterAll, describe, expect, it } from 'vitest';
import { type KafkaSchemaStore, kafkaSchemaStore } from '../../pipeline/schema-store.js';
import { PoisonRecordError, type TableSchema } from '../../schemas/index.js';
import { testKafka, uniq } from '../helpers.js';

const schema = (table: string): TableSchema => ({
  id: { db: 'app', schema: 'public', table },
  dialect: 'postgres',
  primaryKey: ['id'],
  columns: [{ name: 'id', type: { kind: 'int', bits: 64 }, nullable: false, sourceType: 'bigint' }],
});

describe('schema store in a compacted Kafka topic', () => {
  const kafka = testKafka();
  const topic = `${uniq('schemas')}.schemas`;
  const stores: KafkaSchemaStore[] = [];
  const open = () => {
    const s = kafkaSchemaStore({ kafka, topic, topicSpec: { partitions: 1, replicationFactor: 1 } });
    stores.push(s);
    return s;
  };
  afterAll(async () => {
    await Promise.allSettled(stores.map((s) => s.close()));
  });

  it('gives another process every schema written before, also ones written after its first read, and refuses unknown references', async () => {
    const writer = open();
    const a = await writer.put(schema('a'));
    const b = await writer.put(schema('b'));
    expect(a).not.toBe(b);
    expect(await writer.put(schema('a'))).toBe(a); // same text, same reference, no second record

    const reader = open();
    // concurrent lookups share one read of the topic
    const [ra, rb] = await Promise.all([reader.get(a), reader.get(b)]);
    expect(ra).toEqual(schema('a'));
    expect(rb).toEqual(schema('b'));

    const c = await writer.put(schema('c'));
    expect(await reader.get(c)).toEqual(schema('c'));
    await expect(reader.get('sha256:missing')).rejects.toBeInstanceOf(PoisonRecordError);

    const admin = kafka.admin();
    await admin.connect();
    try {
      const [end] = await admin.fetchTopicOffsets(topic);
      expect(Number(end!.high)).toBe(3);
      const meta = await admin.describeConfigs({ resources: [{ type: 2, name: topic, configNames: ['cleanup.policy'] }], includeSynonyms: false });
      expect(meta.resources[0]!.configEntries[0]!.configValue).toBe('compact');
    } finally {
      await admin.disconnect();
    }
  });
});
