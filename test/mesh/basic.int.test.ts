import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { env, testKafka, uniq, until } from '../helpers.js';
import { dump, mariaNode, type NodeDb, type NodeProcess, pgNode, runNode, writeMeshConfig } from './support.js';

/**
 * A three-node mesh (PostgreSQL, PostgreSQL, MariaDB) on the shared servers, each node's pipeline
 * a real `cdc run --only <node>` process: local writes on every node reach the two others, nothing
 * comes back (no loops: each node's topic holds only what was written on that node), and a write
 * on a row another node wrote wins everywhere.
 */

const COLUMNS = ['id', 'name', 'qty', 'wid'];

let nodes: NodeDb[] = [];
let procs: NodeProcess[] = [];
let prefix = '';
let meta = '';
let dir = '';

async function insert(n: NodeDb, id: number, name: string, qty: number, wid: string): Promise<void> {
  await n.exec(`INSERT INTO ${n.t('items')} (id, name, qty, wid) VALUES (${n.p(1)}, ${n.p(2)}, ${n.p(3)}, ${n.p(4)})`, [id, name, qty, wid]);
}

describe('mesh of three nodes', () => {
  beforeAll(async () => {
    prefix = uniq('mesh');
    meta = uniq('meshmeta');
    const db = uniq('meshdb');
    nodes = [await pgNode('pg-eu', env.pgSource, db), await pgNode('pg-us', env.pgReplica, db), await mariaNode('maria-ap', env.mariaReplica, db)];
    for (const n of nodes) {
      await n.exec(`CREATE TABLE ${n.t('items')} (id int PRIMARY KEY, name varchar(100), qty int, wid varchar(40))`);
    }
    dir = fs.mkdtempSync(join(tmpdir(), 'mesh-'));
    const file = writeMeshConfig(dir, { name: prefix, nodes, tables: ['items'], metaSchema: meta });
    procs = nodes.map((n) => runNode(file, n.name, env.kafka, { MESH_LOG_LEVEL: 'info' }));
    // Sources stream from "now": wait until every node's stream is open.
    await until(
      'every node streaming',
      async () => {
        const dead = procs.find((p) => p.child.exitCode !== null);
        if (dead) throw new Error(`${dead.node} exited: ${dead.logs.slice(-5).join('\n')}`);
        return procs.every((p) => p.logs.some((l) => l.includes('"starting replication"') || l.includes('"binlog stream open"')));
      },
      90_000,
      { describe: async () => procs.map((p) => `${p.node}:\n${p.logs.slice(-15).join('\n')}`).join('\n\n') },
    );
  });

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    for (const n of nodes) await n.drop(meta).catch(() => undefined);
    const admin = testKafka().admin();
    await admin.connect();
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(`${prefix}.`));
    if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => undefined);
    await admin.disconnect();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('replicates every node to the others without loops', async () => {
    const [eu, us, ap] = nodes as [NodeDb, NodeDb, NodeDb];
    await insert(eu, 1, 'from eu', 10, 'eu-1');
    await insert(us, 2, 'from us', 20, 'us-1');
    await insert(ap, 3, 'from ap', 30, 'ap-1');
    await insert(ap, 4, 'doomed', 40, 'ap-2');
    const allSame = async () => {
      const d = await Promise.all(nodes.map((n) => dump(n, 'items', COLUMNS, 'id')));
      return d.every((x) => JSON.stringify(x) === JSON.stringify(d[0])) && d[0]!.length === 4;
    };
    const describeAll = async () => (await Promise.all(nodes.map(async (n) => `${n.name}: ${(await dump(n, 'items', COLUMNS, 'id')).join(' ')}`))).join('\n') + '\n' + procs.map((p) => p.logs.filter((l) => /"level":(40|50|60)/.test(l)).slice(-5).join('\n')).join('\n');
    await until('inserts everywhere', allSame, 60_000, { describe: describeAll });

    // Updates of rows other nodes wrote, and a delete of a replicated row.
    await us.exec(`UPDATE ${us.t('items')} SET qty = 11, wid = 'us-2' WHERE id = 1`);
    await ap.exec(`UPDATE ${ap.t('items')} SET name = 'ap was here', wid = 'ap-3' WHERE id = 2`);
    await eu.exec(`DELETE FROM ${eu.t('items')} WHERE id = 4`);
    const expected = [
      JSON.stringify(['1', 'from eu', '11', 'us-2']),
      JSON.stringify(['2', 'ap was here', '20', 'ap-3']),
      JSON.stringify(['3', 'from ap', '30', 'ap-1']),
    ];
    await until(
      'updates and delete everywhere',
      async () => (await Promise.all(nodes.map((n) => dump(n, 'items', COLUMNS, 'id')))).every((d) => JSON.stringify(d) === JSON.stringify(expected)),
      60_000,
      { describe: describeAll },
    );

    // TRUNCATE bypasses the row versioning: refused on PostgreSQL mesh tables.
    await expect(eu.exec(`TRUNCATE ${eu.t('items')}`)).rejects.toThrow(/not replicated by the mesh/);

    // No loops: each node's topic holds exactly the changes written on that node, once.
    const kafka = testKafka();
    const admin = kafka.admin();
    await admin.connect();
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(`${prefix}.`) && t.endsWith('.items'));
    await admin.disconnect();
    expect(topics.length).toBe(3);
    const consumer = kafka.consumer({ groupId: uniq('mesh-check') });
    await consumer.connect();
    await consumer.subscribe({ topics, fromBeginning: true });
    const seen: { topic: string; op: string; wid: string | null; origin: string }[] = [];
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 8000);
      void consumer.run({
        eachMessage: async ({ topic, message }) => {
          if (!message.value) return;
          const v = JSON.parse(message.value.toString()) as { op: string; after: { wid?: string } | null; source: { origin: string } };
          seen.push({ topic, op: v.op, wid: v.after?.wid ?? null, origin: v.source.origin });
          if (seen.length >= 7) {
            clearTimeout(t);
            setTimeout(resolve, 1500); // anything more would be a loop
          }
        },
      });
    });
    await consumer.disconnect();
    const byNode = (node: string) => seen.filter((s) => s.topic.startsWith(`${prefix}.${node}.`));
    expect(byNode('pg-eu').map((s) => `${s.op}:${s.wid}`).sort()).toEqual(['c:eu-1', 'd:null']);
    expect(byNode('pg-us').map((s) => `${s.op}:${s.wid}`).sort()).toEqual(['c:us-1', 'u:us-2']);
    expect(byNode('maria-ap').map((s) => `${s.op}:${s.wid}`).sort()).toEqual(['c:ap-1', 'c:ap-2', 'u:ap-3']);
    for (const s of seen) expect(s.topic.startsWith(`${prefix}.${s.origin}.`)).toBe(true);
    // The hidden version columns never travel.
    expect(seen.length).toBe(7);
  });
});
