import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convergenceChecks, deadlockRetries, runScenario, type ScenarioResult } from './scenario.js';
import { mesh } from './servers.js';
import { dump, type NodeDb } from './support.js';
import { until } from '../helpers.js';

/**
 * Issue 8's randomized test with `version-vector` (items) and a custom resolver (tagged): the
 * same three regions, skewed clock and partition as the lww test. Concurrent updates are
 * detected as such (conflict kind `concurrent`, which lww never reports: it silently keeps the
 * later one), merged per column, and every node converges. Then a targeted partition shows the
 * custom merge (union of tags) in the final state on every node.
 */

let r: ScenarioResult;

describe('randomized three-region mesh, version vectors and a custom resolver', () => {
  beforeAll(async () => {
    r = await runScenario({
      strategy: 'version-vector',
      conflict: { tables: { tagged: { strategy: 'custom', resolver: 'test/mesh/union-tags.ts' } } },
      extraTables: [{ name: 'tagged', ddl: (n: NodeDb) => `CREATE TABLE ${n.t('tagged')} (id int PRIMARY KEY, note varchar(64), tags varchar(255))` }],
    });
    const kinds = new Map<string, number>();
    for (const c of r.conflicts) kinds.set(c.kind, (kinds.get(c.kind) ?? 0) + 1);
    console.log(
      `seed ${r.seed}: ${r.writes.length} writes, ${r.concurrentKeys.size} keys written concurrently across the partition, ` +
        `drained in ${r.drainMs} ms after the writers stopped (${r.healToConvergedMs} ms after the heal), conflicts by kind ${JSON.stringify(Object.fromEntries(kinds))}, ` +
        `deadlock retries ${JSON.stringify(Object.fromEntries(deadlockRetries))}`,
    );
  }, 420_000);

  afterAll(async () => {
    await r?.cleanup();
  }, 120_000);

  convergenceChecks(() => r);

  it('loops nothing: each node published exactly the changes written on it, once', () => {
    for (const n of r.nodes) {
      const events = r.topics.get(n.name)!;
      for (const e of events) expect(e.origin).toBe(n.name);
      expect(events.filter((e) => e.op !== 'd').map((e) => e.wid).sort()).toEqual(r.writes.filter((w) => w.node === n.name && w.op === 'upsert').map((w) => w.wid).sort());
    }
  });

  it('detects concurrent updates as concurrent, and records every conflict across the partition', () => {
    const concurrent = r.conflicts.filter((c) => c.kind === 'concurrent');
    expect(concurrent.length).toBeGreaterThan(0);
    const conflicted = new Set(r.conflicts.map((c) => c.key));
    expect([...r.concurrentKeys].filter((k) => !conflicted.has(JSON.stringify([String(k)])))).toEqual([]);
  });

  it('merges concurrent tag additions with the custom resolver, on every node', async () => {
    const [eu, us, ap] = ['pg-eu', 'pg-us', 'maria-ap'].map((n) => r.nodes.find((x) => x.name === n)!) as [NodeDb, NodeDb, NodeDb];
    const all = () => Promise.all(r.nodes.map((n) => dump(n, 'tagged', ['id', 'note', 'tags'], 'id')));
    await eu.exec(`INSERT INTO ${eu.t('tagged')} (id, note, tags) VALUES (1, 'start', 'a')`);
    await until('the row everywhere', async () => (await all()).every((d) => d.length === 1), 60_000);
    // maria-ap cut off: it and pg-us each add a tag without seeing the other's.
    const link = mesh.regions.find((x) => x.name === 'maria-ap')!.link!;
    link.partition('blackhole');
    try {
      await ap.exec(`UPDATE ${ap.t('tagged')} SET tags = 'a,x', note = 'from ap' WHERE id = 1`);
      await us.exec(`UPDATE ${us.t('tagged')} SET tags = 'a,y' WHERE id = 1`);
      await until('pg-eu has the pg-us update', async () => (await dump(eu, 'tagged', ['tags'], 'tags'))[0] === JSON.stringify(['a,y']), 60_000);
    } finally {
      link.heal();
    }
    const expected = [JSON.stringify(['1', 'from ap', 'a,x,y'])];
    await until(
      'the union on every node',
      async () => (await all()).every((d) => JSON.stringify(d) === JSON.stringify(expected)),
      90_000,
      { describe: async () => JSON.stringify(await all()) },
    );
    const merges = await Promise.all(
      r.nodes.map((n) => n.query(`SELECT count(*) AS c FROM ${n.meta('conflicts', r.meta)} WHERE key_text = '["1"]' AND kind = 'concurrent' AND tbl LIKE '%tagged%'`)),
    );
    expect(merges.reduce((s, rows) => s + Number(rows[0]!.c), 0)).toBeGreaterThan(0);
  });
});
