import { afterAll, describe, expect, it } from 'vitest';
import { mariadbServer, postgresServer, type Server } from '../../infra/servers.js';
import type { SourceRecord } from '../../connectors/source.js';
import { sourceTopics } from '../../pipeline/topics.js';
import { testKafka, uniq, until } from '../helpers.js';
import { auditedTable, doubleWrites, history, model, schemaOf, TABLE } from './crash-support.js';
import { asTransaction, startSink, testPipeline, testPublisher } from './kafka-support.js';
import { EventFactory, mariaReplica, pgReplica, type Replica } from './support.js';

/**
 * The replica is killed (-9) while the sink applies a stream, and started again: the sink retries
 * with backoff, loses nothing and applies nothing twice. Dedicated servers under their own names
 * and ports, never the shared replicas. Conflict strategy none, so only the offsets stored with
 * the rows prevent a replay (see crash.int.test.ts).
 */

const port = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const servers: Record<'postgres' | 'mysql', Server> = {
  postgres: postgresServer({ name: 'pg-sink-fault', port: port('CDC_PG_SINK_FAULT_PORT', 55497) }),
  mysql: mariadbServer({ name: 'maria-sink-fault', port: port('CDC_MARIA_SINK_FAULT_PORT', 33397), serverId: 97 }),
};

describe.each([
  ['postgres', 'key'],
  ['mysql', 'transaction'],
] as const)('replica restart mid-stream: %s replica, %s mode', (kind, mode) => {
  const kafka = testKafka();
  const server = servers[kind];
  let replica: Replica | undefined;

  afterAll(async () => {
    await replica?.drop().catch(() => undefined);
    await server.stop();
  });

  it('retries with backoff and ends with 0 differences and nothing applied twice', async () => {
    await server.start();
    replica = kind === 'postgres' ? await pgReplica(server.url) : await mariaReplica(server.url);
    const db = uniq('restart');
    const meta = uniq('meta');
    replica.track(db);
    replica.track(meta);
    const container = kind === 'postgres' ? 'public' : db;
    await auditedTable(replica, container);
    const cfg = testPipeline([{ name: 'r', url: replica.url, mode, metaSchema: meta, batchSize: 50, topicRefreshIntervalMs: 1000, conflict: { strategy: 'none' } }]);
    const f = new EventFactory(schemaOf(db));
    const events = history(f, 6000, { keyChanges: false });
    // Transaction mode reads whole source transactions: group the history into transactions of 1-5 changes.
    const records: SourceRecord[] = [];
    if (mode === 'transaction') {
      for (let i = 0, tx = 1; i < events.length; tx++) {
        const n = 1 + (tx % 5);
        records.push(...asTransaction(String(tx), events.slice(i, i + n)));
        i += n;
      }
    } else records.push(...events.map((event): SourceRecord => ({ type: 'change', event })));
    const pub = await testPublisher(kafka, cfg);
    const third = Math.floor(records.length / 3);
    await pub.publish({ records: records.slice(0, third), checkpoint: null });
    const sink = startSink(cfg, 'r', kafka);
    try {
      const count = async () => Number((await replica!.query(kind === 'postgres' ? `select count(*)::int as n from "${container}".audit` : `select count(*) as n from \`${container}\`.audit`))[0]!.n);
      await until('the sink to apply part of the stream', async () => (await count()) > 300, 60_000);
      await server.kill9();
      // more records arrive while the replica is down
      await pub.publish({ records: records.slice(third, 2 * third), checkpoint: null });
      await new Promise((r) => setTimeout(r, 3000));
      await server.start();
      await pub.publish({ records: records.slice(2 * third), checkpoint: null });
      const expected = model(events);
      await until('the replica to match the history', async () => JSON.stringify(await replica!.rows(container, TABLE, ['id'])) === JSON.stringify(expected), 120_000, { everyMs: 500 });
      const audit = await doubleWrites(replica, container);
      expect(audit.doubles).toEqual([]);
      expect(audit.writes).toBeGreaterThan(1000);
      // every partition's stored offset reaches the end of the topic (past trailing delete tombstones)
      const topic = sourceTopics(cfg.kafka.topicPrefix!, 'src').table(f.schema.id);
      const admin = kafka.admin();
      await admin.connect();
      const ends = await admin.fetchTopicOffsets(topic);
      await admin.disconnect();
      await until('the stored offsets to reach the topic ends', async () => {
        const stored = await replica!.query(
          kind === 'postgres' ? `select "partition" as p, next_offset::text as o from "${meta}".offsets where topic = $1` : `select \`partition\` as p, cast(next_offset as char) as o from \`${meta}\`.offsets where topic = ?`,
          [topic],
        );
        const m = new Map(stored.map((r) => [Number(r.p), String(r.o)]));
        return ends.every((e) => m.get(e.partition) === e.high);
      }, 30_000);
    } finally {
      await sink.stop();
      await pub.close();
    }
  });
});
