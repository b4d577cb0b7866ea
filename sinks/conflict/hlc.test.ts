import { describe, expect, it } from 'vitest';
import { hlcLocal, hlcObserve } from './hlc.js';
import { mulberry32 } from '../../test/prng.js';

/**
 * Property tests of the mesh's clock rules on a simulated mesh: nodes with skewed wall clocks
 * write random keys, every write is delivered to every other node after a random delay (some
 * links partitioned for a while), and each node keeps per-key LWW state the way the sinks and
 * triggers do. Checked: causality (a write made after applying another gets a larger version),
 * bounded drift, convergence, and that a fast clock does not win over a later write that saw it.
 */

/** (ts, origin, seq): seq is the write's place in its node's log, as the sinks' `order` is. */
interface Version {
  ts: bigint;
  origin: number;
  seq: number;
  /** Unique write id, for causality bookkeeping. */
  id: number;
}
const newer = (a: Version, b: Version) => a.ts > b.ts || (a.ts === b.ts && (a.origin > b.origin || (a.origin === b.origin && a.seq > b.seq)));

interface SimNode {
  skewUs: bigint;
  clock: bigint;
  /** key → row version or tombstone version (deleted = true). */
  state: Map<number, { v: Version; deleted: boolean }>;
  /** Write ids this node has applied or made (its causal past, transitively through what it applied). */
  seen: Set<number>;
  /** Write ids this node applied from other nodes (directly). */
  applied: Set<number>;
}

function simulate(seed: number, o: { steps: number; causality: boolean }) {
  const r = mulberry32(seed);
  const nodes: SimNode[] = [0n, 3_000_000n, -800_000n].map((skewUs) => ({ skewUs, clock: 0n, state: new Map(), seen: new Set(), applied: new Set() }));
  const keys = 6;
  let now = 1_000_000_000_000n; // real time, µs
  let nextId = 1;
  /** Causal past of each write (ids it could have seen). */
  const past = new Map<number, Set<number>>();
  const writes = new Map<number, { node: number; key: number; v: Version; deleted: boolean; wall: bigint }>();
  const inflight: { at: bigint; to: number; w: number }[] = [];
  const partitioned = { node: 2, from: now + 2_000_000n, to: now + 6_000_000n };
  const problems: string[] = [];

  const apply = (n: number, w: number) => {
    const node = nodes[n]!;
    const x = writes.get(w)!;
    const cur = node.state.get(x.key);
    if (!cur || newer(x.v, cur.v)) node.state.set(x.key, { v: x.v, deleted: x.deleted });
    node.clock = hlcObserve(node.clock, x.v.ts);
    for (const p of past.get(w)!) node.seen.add(p);
    node.seen.add(w);
    node.applied.add(w);
  };

  for (let step = 0; step < o.steps; step++) {
    now += BigInt(1 + Math.floor(r() * 3000)); // up to 3 ms between events
    // deliver what is due (partitioned links hold traffic to and from the node)
    inflight.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
    while (inflight.length > 0 && inflight[0]!.at <= now) {
      const m = inflight[0]!;
      const from = writes.get(m.w)!.node;
      const cut = now >= partitioned.from && now < partitioned.to && (m.to === partitioned.node || from === partitioned.node);
      if (cut) {
        m.at = partitioned.to;
        continue;
      }
      inflight.shift();
      apply(m.to, m.w);
    }
    const n = Math.floor(r() * nodes.length);
    const node = nodes[n]!;
    const key = Math.floor(r() * keys);
    const cur = node.state.get(key);
    const ts = hlcLocal({ wallUs: now + node.skewUs, clock: node.clock, previous: cur && !cur.deleted ? cur.v.ts : null, tombstone: cur?.deleted ? cur.v.ts : null });
    const id = nextId++;
    const v: Version = { ts, origin: n, seq: id, id };
    const deleted = cur !== undefined && !cur.deleted && r() < 0.2;
    writes.set(id, { node: n, key, v, deleted, wall: now });
    past.set(id, o.causality ? new Set(node.seen) : new Set());
    // causality: every write this node applied from another node (any key) and its own earlier
    // writes of the key are smaller. Not guaranteed (not checked): chains through a node's own
    // writes on other keys, since local writes do not advance the clock (see hlc.ts).
    if (o.causality) {
      for (const p of node.seen) {
        const pw = writes.get(p)!;
        if (!node.applied.has(p) && !(pw.node === n && pw.key === key)) continue;
        if (!newer(v, pw.v)) problems.push(`write ${id} on node ${n} (ts ${ts}) not after write ${p} it saw (ts ${pw.v.ts})`);
      }
    }
    node.state.set(key, { v, deleted });
    node.seen.add(id);
    for (let o = 0; o < nodes.length; o++) if (o !== n) inflight.push({ at: now + BigInt(Math.floor(r() * 200_000)), to: o, w: id });
  }
  // drain
  for (const m of inflight.sort((a, b) => (a.at < b.at ? -1 : 1))) apply(m.to, m.w);
  return { nodes, writes, problems };
}

describe('hybrid logical clock rules', () => {
  it('a write\'s version is above every write its node applied (any key) and its own earlier writes of the key (causality)', () => {
    for (const seed of [1, 2, 3]) expect(simulate(seed, { steps: 1200, causality: true }).problems.slice(0, 3)).toEqual([]);
  });

  it('versions stay within the largest clock offset (plus logical ticks) of real time', () => {
    const { writes } = simulate(7, { steps: 3000, causality: false });
    let worst = 0n;
    for (const w of writes.values()) if (w.v.ts - w.wall > worst) worst = w.v.ts - w.wall;
    // the fastest clock is 3 s ahead; logical ticks add at most one µs per write
    expect(worst).toBeLessThanOrEqual(3_000_000n + BigInt(writes.size));
    expect(worst).toBeGreaterThanOrEqual(3_000_000n);
  });

  it('every node ends with the same state (LWW over HLC versions converges)', () => {
    for (const seed of [5, 6, 99]) {
      const { nodes } = simulate(seed, { steps: 3000, causality: false });
      const canon = (n: SimNode) => JSON.stringify([...n.state].sort(([a], [b]) => a - b).map(([k, s]) => [k, s.v.id, s.deleted]));
      expect(canon(nodes[1]!)).toBe(canon(nodes[0]!));
      expect(canon(nodes[2]!)).toBe(canon(nodes[0]!));
    }
  });

  it('a slow node writing after it applied a fast node\'s write wins (pure wall clocks would lose for seconds)', () => {
    const fastWall = 1_000_003_000_000n; // 3 s ahead
    const slowWall = 1_000_000_100_000n; // 100 ms later in real time, but behind on its clock
    const fast = hlcLocal({ wallUs: fastWall, clock: 0n });
    const slowClock = hlcObserve(0n, fast);
    const slow = hlcLocal({ wallUs: slowWall, clock: slowClock, previous: fast });
    expect(slow).toBeGreaterThan(fast);
    expect(slowWall).toBeLessThan(fast); // what plain commit timestamps would have compared
    // and the slow node's next write to an unrelated row is after it too (node-level clock)
    expect(hlcLocal({ wallUs: slowWall + 1n, clock: slowClock })).toBeGreaterThan(fast);
  });
});
