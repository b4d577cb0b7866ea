import { Partitioners } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DLQ_HEADER } from '../../pipeline/dead-letter.js';
import type { Publisher } from '../../pipeline/publisher.js';
import { pipelineTopics, sourceTopics } from '../../pipeline/topics.js';
import { type ChangeEvent, eventKey, eventOldKey, keyChanged } from '../../schemas/change-event.js';
import { type Row, UNCHANGED } from '../../schemas/column-types.js';
import { jsonCodec } from '../../schemas/codec/json.js';
import { HEADER } from '../../schemas/codec/types.js';
import type { TableSchema } from '../../schemas/table-schema.js';
import { consumeN, testKafka, uniq, until } from '../helpers.js';
import { schemaOf } from './crash-support.js';
import { asTransaction, startSink, testPipeline, testPublisher } from './kafka-support.js';
import { EventFactory, type Replica, replicaOf } from './support.js';

/** The state a history leaves, applied one change at a time (the reference). */
function model(events: ChangeEvent[]): Map<string, Row> {
  const m = new Map<string, Row>();
  const k = (r: Row | null) => JSON.stringify(r);
  for (const e of events) {
    if (e.op === 't') m.clear();
    else if (e.op === 'd') m.delete(k(eventKey(e)));
    else {
      if (e.op === 'u' && keyChanged(e)) m.delete(k(eventOldKey(e)));
      m.set(k(eventKey(e)), e.after!);
    }
  }
  return m;
}

const asText = (rows: Iterable<Row>) =>
  [...rows].map((r) => Object.fromEntries(Object.entries(r).map(([c, v]) => [c, v === null ? null : String(v)]))).sort((a, b) => Number(a.id) - Number(b.id));

describe.each(['postgres', 'mysql'] as const)('sink through Kafka: %s replica', (kind) => {
  const kafka = testKafka();
  let replica: Replica;
  const db = uniq('kdb');

  beforeAll(async () => {
    replica = await replicaOf(kind);
    replica.track(db);
  });
  afterAll(async () => {
    await replica?.drop();
  });

  it('key mode: a mixed history over 3 partitions, truncate across partitions, an undecodable record to the DLQ', async () => {
    const meta = uniq('meta');
    replica.track(meta);
    const cfg = testPipeline([{ name: 'r', url: replica.url, metaSchema: meta, batchSize: 50, topicRefreshIntervalMs: 500 }]);
    const pub: Publisher = await testPublisher(kafka, cfg);
    const f = new EventFactory(schemaOf(db, 'mixed'));
    const history: ChangeEvent[] = [];
    const emit = async (events: ChangeEvent[]) => {
      history.push(...events);
      await pub.publish({ records: events.map((event) => ({ type: 'change', event })), checkpoint: null });
    };
    const rnd = (n: number) => Math.floor(Math.random() * n);
    // phase 1: inserts, updates (key and non-key), deletes
    const ids = new Set<number>();
    const phase = async (from: number, n: number) => {
      const batch: ChangeEvent[] = [];
      for (let i = 0; i < n; i++) {
        const live = [...ids];
        const roll = Math.random();
        if (live.length < 10 || roll < 0.4) {
          const id = from + i;
          ids.add(id);
          batch.push(f.event('c', null, { id: String(id), name: `n${id}`, balance: `${rnd(1000)}.25` }));
        } else if (roll < 0.75) {
          const id = live[rnd(live.length)]!;
          batch.push(f.event('u', { id: String(id) }, { id: String(id), name: `u${i}`, balance: `${rnd(1000)}.50` }));
        } else if (roll < 0.85) {
          const id = live[rnd(live.length)]!;
          const to = from + n + i;
          ids.delete(id);
          ids.add(to);
          batch.push(f.event('u', { id: String(id) }, { id: String(to), name: `moved${id}`, balance: '1.00' }));
        } else {
          const id = live[rnd(live.length)]!;
          ids.delete(id);
          batch.push(f.event('d', { id: String(id) }, null));
        }
      }
      await emit(batch);
    };
    await phase(1, 300);
    await emit([f.event('t', null, null)]);
    ids.clear();
    await phase(10_000, 300);
    // a record no codec can read, straight into the table topic
    const topic = sourceTopics(cfg.kafka.topicPrefix!, 'src').table(f.schema.id);
    const raw = kafka.producer();
    await raw.connect();
    await raw.send({ topic, messages: [{ key: '{"id":"1"}', value: 'this is not json', headers: { [HEADER.schema]: JSON.stringify(f.schema), [HEADER.position]: '{"kind":"pg","lsn":"0/1"}' } }] });
    await raw.disconnect();
    await pub.close();

    const expected = asText(model(history).values());
    const worker = startSink(cfg, 'r', kafka);
    try {
      await until('the replica to match the history', async () => {
        const rows = await replica.rows(kind === 'postgres' ? 'public' : db, 'mixed', ['id']);
        return JSON.stringify(rows) === JSON.stringify(expected);
      });
      const dead = await consumeN(kafka, pipelineTopics(cfg.kafka.topicPrefix!).deadLetter('r'), 1);
      expect(dead[0]!.value?.toString()).toBe('this is not json');
      expect(dead[0]!.headers?.[DLQ_HEADER.reason]?.toString()).toMatch(/undecodable|JSON/i);
      expect(dead[0]!.headers?.[DLQ_HEADER.topic]?.toString()).toBe(topic);
    } finally {
      await worker.stop();
    }
    expect(expected.length).toBeGreaterThan(20);
    // every partition's offset is stored in the replica
    const offsets = await replica.query(kind === 'postgres' ? `SELECT "partition" FROM "${meta}".offsets WHERE topic = $1` : `SELECT \`partition\` FROM \`${meta}\`.offsets WHERE topic = ?`, [topic]);
    expect(offsets.map((r) => Number(r.partition)).sort()).toEqual([0, 1, 2]);
  });

  it.each(['key', 'transaction'] as const)('%s mode: a worker whose Kafka position lags the replica resumes at the stored offsets', async (mode) => {
    const meta = uniq('meta');
    replica.track(meta);
    const cfg = testPipeline([{ name: 'lag', url: replica.url, metaSchema: meta, mode, batchSize: 50, topicRefreshIntervalMs: 500 }], { partitions: 1 });
    const pub = await testPublisher(kafka, cfg);
    const f = new EventFactory(schemaOf(db, `lag_${mode}`));
    const first = Array.from({ length: 1500 }, (_, i) => f.event('c', null, { id: String(i), name: `n${i}`, balance: '1.00' }));
    for (let i = 0; i < first.length; i += 300) await pub.publish({ records: first.slice(i, i + 300).map((event) => ({ type: 'change', event })), checkpoint: null });
    const container = kind === 'postgres' ? 'public' : db;
    const count = async () => Number((await replica.query(kind === 'postgres' ? `select count(*)::int as n from "public"."lag_${mode}"` : `select count(*) as n from \`${db}\`.\`lag_${mode}\``))[0]!.n);
    const a = startSink(cfg, 'lag', kafka);
    try {
      await until('the first worker to apply everything', async () => (await count().catch(() => 0)) === 1500);
    } finally {
      await a.stop();
    }
    // Same sink (same stored offsets), another consumer group: Kafka starts it at the beginning,
    // in batches of a few records, far behind the offset the replica stored.
    cfg.sinks[0]!.group = uniq('lag-group');
    await pub.publish({ records: [f.event('c', null, { id: '99999', name: 'late', balance: '2.00' })].map((event) => ({ type: 'change', event })), checkpoint: null });
    const b = startSink(cfg, 'lag', kafka, 10_000, { maxBytesPerPartition: 16 * 1024 });
    try {
      await until('the late record', async () => (await replica.rows(container, `lag_${mode}`, ['id'])).some((r) => r.id === '99999'), 30_000);
    } finally {
      await b.stop();
      await pub.close();
    }
    expect(await count()).toBe(1501);
  });

  it('key mode: a key change whose old row arrives later in another partition waits for it and keeps the unchanged column', async () => {
    const meta = uniq('meta');
    replica.track(meta);
    const cfg = testPipeline([{ name: 'kc', url: replica.url, metaSchema: meta, batchSize: 50, topicRefreshIntervalMs: 500 }]);
    const schema: TableSchema = { ...schemaOf(db, 'late_old'), columns: [...schemaOf(db, 'late_old').columns, { name: 'doc', type: { kind: 'string' }, nullable: true, sourceType: 'text' }] };
    const f = new EventFactory(schema);
    // Old and new key in different partitions (the publisher's partitioner: murmur2 of the key).
    const partitioner = Partitioners.DefaultPartitioner();
    const partitionMetadata = [0, 1, 2].map((partitionId) => ({ partitionId, leader: 0, partitionErrorCode: 0, replicas: [0], isr: [0] }));
    const codec = jsonCodec();
    const partitionOf = async (e: ChangeEvent) => partitioner({ topic: 't', partitionMetadata, message: { key: (await codec.encodeChange(e)).key, value: null } });
    const big = 'd'.repeat(4000);
    const insert = f.event('c', null, { id: '1', name: 'a', balance: '1.00', doc: big });
    let to = 2;
    let keyChange = f.event('u', { id: '1' }, { id: String(to), name: 'b', balance: '2.00', doc: UNCHANGED });
    while ((await partitionOf(keyChange)) === (await partitionOf(insert))) keyChange = f.event('u', { id: '1' }, { id: String(++to), name: 'b', balance: '2.00', doc: UNCHANGED });
    const pub = await testPublisher(kafka, cfg);
    await pub.publish({ records: [{ type: 'change', event: keyChange }], checkpoint: null });
    const worker = startSink(cfg, 'kc', kafka);
    const container = kind === 'postgres' ? 'public' : db;
    try {
      // The key change arrived first: the sink holds it (its table appears only with a written row).
      await new Promise((r) => setTimeout(r, 3000));
      expect(await replica.rows(container, 'late_old', ['id']).catch(() => [])).toEqual([]);
      await pub.publish({ records: [{ type: 'change', event: insert }], checkpoint: null });
      await until('the moved row with its unchanged column', async () => {
        const rows = await replica.rows(container, 'late_old', ['id']).catch(() => []);
        return JSON.stringify(rows) === JSON.stringify([{ id: String(to), name: 'b', balance: '2.00', doc: big }]);
      });
    } finally {
      await pub.close();
      await worker.stop();
    }
  });

  it('transaction mode: chunks that would end inside every transaction still commit, and paused partitions resume', async () => {
    const meta = uniq('meta');
    replica.track(meta);
    // batchSize 3 with a 1-event transaction first and 2-event ones after: every chunk of exactly
    // 3 would end inside a transaction. A tiny buffer pauses partitions all the time, and every
    // record is its own Kafka batch (one publish each) fetched one at a time, so the transaction
    // topic is often paused right after a BEGIN whose END it has not fetched.
    const cfg = testPipeline([{ name: 'tc', url: replica.url, metaSchema: meta, mode: 'transaction', batchSize: 3, maxBufferedEvents: 2, topicRefreshIntervalMs: 500 }]);
    const pub = await testPublisher(kafka, cfg);
    const f = new EventFactory(schemaOf(db, 'chunked'));
    const records = [...asTransaction('1', [f.event('c', null, { id: '0', name: 'z', balance: '0.00' })])];
    const txs = 60;
    for (let t = 1; t <= txs; t++) {
      records.push(...asTransaction(String(t + 1), [f.event('c', null, { id: String(2 * t - 1), name: 'a', balance: '1.00' }), f.event('c', null, { id: String(2 * t), name: 'b', balance: '2.00' })]));
    }
    for (const r of records) await pub.publish({ records: [r], checkpoint: null });
    await pub.close();
    const worker = startSink(cfg, 'tc', kafka, 10_000, { maxBytesPerPartition: 64 });
    try {
      await until(
        `all ${2 * txs + 1} rows`,
        async () => {
          const rows = await replica.query(kind === 'postgres' ? `select count(*) as n from "public"."chunked"` : `select count(*) as n from \`${db}\`.\`chunked\``).catch(() => [{ n: 0 }]);
          return Number(rows[0]!.n) === 2 * txs + 1;
        },
        60_000,
      );
    } finally {
      await worker.stop();
    }
  });

  it('transaction mode: a concurrent reader never sees the sum of balances across two tables change', async () => {
    const meta = uniq('meta');
    replica.track(meta);
    const cfg = testPipeline([{ name: 't', url: replica.url, metaSchema: meta, mode: 'transaction', batchSize: 25, topicRefreshIntervalMs: 500 }]);
    const pub = await testPublisher(kafka, cfg);
    const fa = new EventFactory(schemaOf(db, 'bank_a'));
    const fb = new EventFactory(schemaOf(db, 'bank_b'));
    const n = 10;
    const balances = { a: new Array<number>(n).fill(1000), b: new Array<number>(n).fill(1000) };
    const total = 2 * n * 1000;
    let tsUs = 1_800_000_000_000_000n;
    const load = [...Array.from({ length: n }, (_, i) => fa.event('c', null, { id: String(i), name: `a${i}`, balance: '1000.00' }, { tsUs })), ...Array.from({ length: n }, (_, i) => fb.event('c', null, { id: String(i), name: `b${i}`, balance: '1000.00' }, { tsUs }))];
    await pub.publish({ records: asTransaction('1', load), checkpoint: null });
    const transfers = 400;
    const records = [];
    for (let t = 0; t < transfers; t++) {
      tsUs += 1000n;
      const x = Math.floor(Math.random() * n);
      const y = Math.floor(Math.random() * n);
      const amt = 1 + Math.floor(Math.random() * 50);
      balances.a[x]! -= amt;
      balances.b[y]! += amt;
      const events = [
        fa.event('u', { id: String(x) }, { id: String(x), name: `a${x}`, balance: `${balances.a[x]}.00` }, { tsUs }),
        fb.event('u', { id: String(y) }, { id: String(y), name: `b${y}`, balance: `${balances.b[y]}.00` }, { tsUs }),
      ];
      records.push(...asTransaction(String(t + 2), events));
    }
    // published in chunks while the sink runs, so the reader races the apply
    const worker = startSink(cfg, 't', kafka);
    const replicaSchema = kind === 'postgres' ? 'public' : db;
    const sumSql =
      kind === 'postgres'
        ? `SELECT (SELECT coalesce(sum(balance),0) FROM "public"."bank_a") + (SELECT coalesce(sum(balance),0) FROM "public"."bank_b") AS s, (SELECT count(*) FROM "public"."bank_a") AS n`
        : `SELECT (SELECT coalesce(sum(balance),0) FROM \`${db}\`.\`bank_a\`) + (SELECT coalesce(sum(balance),0) FROM \`${db}\`.\`bank_b\`) AS s, (SELECT count(*) FROM \`${db}\`.\`bank_a\`) AS n`;
    let reads = 0;
    const broken: string[] = [];
    let reading = true;
    const reader = (async () => {
      while (reading) {
        try {
          const [r] = await replica.query(sumSql);
          const s = Number(r!.s);
          if (Number(r!.n) > 0) {
            reads++;
            if (s !== total) broken.push(String(s));
          }
        } catch {
          // tables not created yet
        }
      }
    })();
    try {
      for (let i = 0; i < records.length; i += 40) await pub.publish({ records: records.slice(i, i + 40), checkpoint: null });
      await until('all transfers applied', async () => {
        const a = await replica.rows(replicaSchema, 'bank_a', ['id']);
        return a.length === n && a.every((r, i) => r.balance === `${balances.a[i]}.00`);
      });
    } finally {
      reading = false;
      await reader;
      await worker.stop();
      await pub.close();
    }
    const b = await replica.rows(replicaSchema, 'bank_b', ['id']);
    expect(b.map((r) => r.balance)).toEqual(balances.b.map((x) => `${x}.00`));
    expect(reads).toBeGreaterThan(20);
    expect(broken).toEqual([]);
  });
});
