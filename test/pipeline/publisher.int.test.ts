import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SourceRecord } from '../../connectors/source.js';
import { loadCheckpoint } from '../../pipeline/checkpoint.js';
import { createPublisher, type Publisher } from '../../pipeline/publisher.js';
import { sourceTopics } from '../../pipeline/topics.js';
import { type ChangeEvent, HEADER, jsonCodec, type TableSchema } from '../../schemas/index.js';
import { consumeN, testKafka, uniq } from '../helpers.js';

const schema: TableSchema = {
  id: { db: 'app', schema: 'public', table: 'users' },
  dialect: 'postgres',
  primaryKey: ['id'],
  columns: [
    { name: 'id', type: { kind: 'int', bits: 64 }, nullable: false, sourceType: 'bigint' },
    { name: 'name', type: { kind: 'string' }, nullable: true, sourceType: 'text' },
  ],
};

function change(op: ChangeEvent['op'], id: number, name: string | null, lsn: number): SourceRecord {
  const row = { id: String(id), name };
  return {
    type: 'change',
    event: {
      op,
      before: op === 'd' || op === 'u' ? row : null,
      after: op === 'd' || op === 't' ? null : row,
      source: { version: 'test', connector: 'postgresql', name: 'pg', ts_ms: Date.now(), snapshot: 'false', db: 'app', schema: 'public', table: 'users', txId: '7', lsn: `0/${lsn}` },
      ts_ms: Date.now(),
      transaction: null,
      schema,
      position: { kind: 'pg', lsn: `0/${lsn}` },
    },
  };
}

describe.each([false, true])('publisher (transactional=%s)', (transactional) => {
  const kafka = testKafka();
  const prefix = uniq('pub');
  const topics = sourceTopics(prefix, 'pg');
  const offsets = `${prefix}.offsets`;
  let publisher: Publisher;

  beforeAll(async () => {
    publisher = await createPublisher({
      kafka,
      codec: jsonCodec(),
      topics,
      sourceName: 'pg',
      offsetsTopic: offsets,
      topicSpec: { partitions: 3, replicationFactor: 1 },
      transactional,
    });
  });
  afterAll(() => publisher.close());

  it('keys by primary key, adds tombstones, broadcasts truncates and stores the checkpoint', async () => {
    const truncate = change('t', 0, null, 60);
    truncate.type === 'change' && (truncate.event.before = null);
    await publisher.publish({
      records: [change('c', 1, 'a', 10), change('c', 2, 'b', 20), change('u', 1, 'a2', 30), change('d', 2, null, 40), truncate],
      checkpoint: { kind: 'pg', lsn: '0/50' },
    });
    await publisher.publish({ records: [], checkpoint: { kind: 'pg', lsn: '0/70' } });

    // 4 changes + 1 tombstone + truncate in each of the 3 partitions
    const msgs = await consumeN(kafka, topics.table(schema.id), 8);
    expect(msgs).toHaveLength(8);
    const byKey = new Map<string, typeof msgs>();
    for (const m of msgs) {
      const k = m.key?.toString() ?? 'null';
      byKey.set(k, [...(byKey.get(k) ?? []), m]);
    }
    const one = byKey.get('{"id":"1"}')!;
    expect(one.map((m) => JSON.parse(m.value!.toString()).op)).toEqual(['c', 'u']);
    expect(new Set(one.map((m) => m.partition)).size).toBe(1);
    const two = byKey.get('{"id":"2"}')!;
    expect(two.map((m) => (m.value === null ? 'tombstone' : JSON.parse(m.value.toString()).op))).toEqual(['c', 'd', 'tombstone']);
    const truncates = byKey.get('null')!;
    expect(truncates.map((m) => m.partition).sort()).toEqual([0, 1, 2]);

    const decoded = await jsonCodec().decodeChange({
      key: one[1]!.key,
      value: one[1]!.value,
      headers: Object.fromEntries(Object.entries(one[1]!.headers ?? {}).map(([k, v]) => [k, String(v)])),
    });
    expect(decoded?.after).toEqual({ id: '1', name: 'a2' });
    expect(decoded?.schema).toEqual(schema);
    expect(one[1]!.headers?.[HEADER.position]?.toString()).toBe('{"kind":"pg","lsn":"0/30"}');

    expect(await loadCheckpoint(kafka, offsets, 'pg')).toEqual({ kind: 'pg', lsn: '0/70' });
    expect(await loadCheckpoint(kafka, offsets, 'other')).toBeNull();
  });

  it('stores the checkpoint of the last batch within about a second even when no batch follows', async () => {
    await publisher.publish({ records: [change('c', 3, 'c', 80)], checkpoint: { kind: 'pg', lsn: '0/90' } });
    const until = Date.now() + 5000;
    let got = await loadCheckpoint(kafka, offsets, 'pg');
    while (got?.kind === 'pg' && got.lsn !== '0/90' && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 200));
      got = await loadCheckpoint(kafka, offsets, 'pg');
    }
    expect(got).toEqual({ kind: 'pg', lsn: '0/90' });
  });
});
