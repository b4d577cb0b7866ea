// The 3-node KRaft cluster (`infra/up kafka-cluster`): RF 3 / min ISR 2, survives losing one node.
// Skipped with CDC_SKIP_CLUSTER_TEST=1 (it needs ~1.5 GB of RAM and ~30 s).
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cluster } from '../../infra/servers.js';
import { ensureTopics } from '../../pipeline/topics.js';

describe.skipIf(process.env['CDC_SKIP_CLUSTER_TEST'] === '1')('kafka-cluster', () => {
  let wasRunning = false;
  beforeAll(async () => {
    wasRunning = await cluster.healthy();
    await cluster.start();
  }, 300_000);
  afterAll(async () => {
    if (!wasRunning) await cluster.stop();
  }, 180_000);

  it('replicates to 3 nodes and keeps accepting acks=-1 writes with one node killed', async () => {
    const kafka = new Kafka({
      clientId: 'infra-cluster-test',
      brokers: cluster.bootstrap.split(','),
      logLevel: logLevel.NOTHING,
      // Patient: after the kill, partitions led by the dead node move once the controller fences it (broker.session.timeout.ms).
      retry: { retries: 30, initialRetryTime: 200, maxRetryTime: 2000 },
    });
    const topic = `infra-cluster-${randomUUID()}`;
    const admin = kafka.admin();
    await admin.connect();
    // A node registers with the controller quorum a moment after its port opens: wait for all three.
    let nodes: number[] = [];
    for (let i = 0; i < 120 && nodes.length < 3; i++) {
      nodes = (await admin.describeCluster()).brokers.map((b) => b.nodeId).sort();
      if (nodes.length < 3) await new Promise((r) => setTimeout(r, 500));
    }
    expect(nodes).toEqual([1, 2, 3]);
    await ensureTopics(admin, { [topic]: { partitions: 3, replicationFactor: 3 } });
    // Every node learns of the topic a little later: a node may still answer "unknown topic".
    let meta: Awaited<ReturnType<typeof admin.fetchTopicMetadata>> | undefined;
    for (let i = 0; i < 50 && !meta; i++) meta = await admin.fetchTopicMetadata({ topics: [topic] }).catch(() => new Promise<undefined>((r) => setTimeout(r, 200)));
    if (!meta) throw new Error(`no metadata for ${topic}`);
    expect(meta.topics[0]?.partitions).toHaveLength(3);
    for (const p of meta.topics[0]?.partitions ?? []) expect(p.replicas).toHaveLength(3);

    const producer = kafka.producer({ idempotent: true });
    await producer.connect();
    const values = Array.from({ length: 200 }, (_, i) => `v${i}`);
    await producer.send({ topic, acks: -1, messages: values.slice(0, 100).map((value) => ({ value })) });

    const victim = cluster.brokers[1]!;
    await victim.kill9();
    expect(victim.pid()).toBeUndefined();
    await producer.send({ topic, acks: -1, messages: values.slice(100).map((value) => ({ value })) });
    await producer.disconnect();

    await expect(victim.start()).resolves.toBe('started');
    await cluster.start(); // idempotent; waits until all nodes see each other again
    expect(await cluster.healthy()).toBe(true);

    const offsets = await admin.fetchTopicOffsets(topic);
    expect(offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0)).toBe(values.length);
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }, 300_000);
});
