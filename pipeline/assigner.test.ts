import { describe, expect, it } from 'vitest';
import { balance } from './assigner.js';

const total = (a: Record<string, number[]>, w: Map<string, number>) => Object.entries(a).reduce((n, [t, ps]) => n + ps.reduce((m, p) => m + w.get(`${t}/${p}`)!, 0), 0);

describe('record-balanced partition assignment', () => {
  it('splits skewed partitions by records, where round robin would give both hot ones to one worker', () => {
    // pgbench's shape: one hot partition each for branches and history, three warm ones each for accounts and tellers.
    const parts = [
      ...[0, 1, 2].map((p) => ({ topic: 'accounts', partition: p, weight: 8300 })),
      { topic: 'branches', partition: 0, weight: 0 },
      { topic: 'branches', partition: 1, weight: 25000 },
      { topic: 'branches', partition: 2, weight: 0 },
      { topic: 'history', partition: 0, weight: 25000 },
      { topic: 'history', partition: 1, weight: 0 },
      { topic: 'history', partition: 2, weight: 0 },
      ...[0, 1, 2].map((p) => ({ topic: 'tellers', partition: p, weight: 8300 })),
    ];
    const w = new Map(parts.map((p) => [`${p.topic}/${p.partition}`, p.weight]));
    const plan = balance(['m2', 'm1'], parts);
    const loads = [...plan.values()].map((a) => total(a, w));
    expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(8300);
    // The two hot partitions are on different workers.
    const hot = [...plan.entries()].map(([, a]) => (a.branches?.includes(1) ? 1 : 0) + (a.history?.includes(0) ? 1 : 0));
    expect(hot.sort()).toEqual([1, 1]);
    // Every partition exactly once.
    const all = [...plan.values()].flatMap((a) => Object.entries(a).flatMap(([t, ps]) => ps.map((p) => `${t}/${p}`)));
    expect(all.sort()).toEqual([...w.keys()].sort());
  });

  it('is deterministic and spreads equal weights by count', () => {
    const parts = Array.from({ length: 7 }, (_, i) => ({ topic: 't', partition: i, weight: 0 }));
    const a = balance(['b', 'a', 'c'], parts);
    expect(balance(['c', 'a', 'b'], parts)).toEqual(a);
    expect([...a.values()].map((x) => x.t?.length ?? 0).sort()).toEqual([2, 2, 3]);
  });

  it('gives a member nothing when there are more members than partitions', () => {
    const plan = balance(['a', 'b'], [{ topic: 't', partition: 0, weight: 5 }]);
    expect([...plan.values()].filter((x) => Object.keys(x).length === 0)).toHaveLength(1);
  });
});
