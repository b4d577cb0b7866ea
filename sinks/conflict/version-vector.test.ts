import { describe, expect, it } from 'vitest';
import { isUnchanged, type Row } from '../../schemas/column-types.js';
import { hlcLocal, hlcObserve } from './hlc.js';
import type { ConflictResolver, Resolution } from './types.js';
import { compareVersions, type RowVersion } from './version.js';
import { compareVectors, CTS_COLUMN, parseColumnVersions, parseVector, VV_COLUMN, versionVectorResolver } from './version-vector.js';
import { mulberry32 } from '../../test/prng.js';

/**
 * The version-vector resolver on a simulated mesh: three nodes write random rows (inserts,
 * partial updates, deletes, re-inserts) the way the mesh triggers do (HLC versions, vector tick,
 * per-column versions), every change reaches every other node in a random order (per origin and
 * key in order, as Kafka partitions keep them), and each node applies the resolver's outcome the
 * way the replica sink does. All nodes must end identical, whatever the order.
 */

const NODES = ['a', 'b', 'c'];
const COLS = ['x', 'y', 'tags'];
/** Local writes add a tag (grow-only), so a union is a join of what they produce. */
const addTag = (tags: unknown, t: string) => [...new Set([...String(tags ?? '').split(',').filter((x) => x !== ''), t])].sort().join(',');

interface KeyState {
  row: Row | null;
  version: RowVersion | null;
  tomb: RowVersion | null;
}

interface Change {
  origin: string;
  key: number;
  kind: 'upsert' | 'delete';
  row: Row | null;
  before: Row | null;
  version: RowVersion;
}

class SimNode {
  clock = 0n;
  seq = 0;
  readonly keys = new Map<number, KeyState>();
  constructor(
    readonly name: string,
    readonly skewUs: bigint,
  ) {}

  state(k: number): KeyState {
    let s = this.keys.get(k);
    if (!s) this.keys.set(k, (s = { row: null, version: null, tomb: null }));
    return s;
  }

  /** A local write as the triggers do it; returns the change the node's source publishes. */
  write(k: number, wall: bigint, r: () => number, deleteRate: number): Change {
    const s = this.state(k);
    const ts = hlcLocal({ wallUs: wall + this.skewUs, clock: this.clock, previous: s.version?.tsUs ?? null, tombstone: s.tomb?.tsUs ?? null });
    const version: RowVersion = { tsUs: ts, origin: this.name, order: String(++this.seq).padStart(8, '0') };
    const cell = [Number(ts), this.name];
    if (s.row !== null && r() < deleteRate) {
      const vv = parseVector(s.row[VV_COLUMN]);
      vv[this.name] = (vv[this.name] ?? 0) + 1;
      s.row = null;
      s.version = null;
      s.tomb = version;
      return { origin: this.name, key: k, kind: 'delete', row: null, before: { id: String(k), [VV_COLUMN]: JSON.stringify(vv) }, version };
    }
    if (s.row === null) {
      const row: Row = { id: String(k) };
      const cts: Record<string, unknown> = {};
      for (const c of COLS) {
        row[c] = c === 'tags' ? addTag('', `t${Math.floor(r() * 20)}`) : `${this.name}${this.seq}`;
        cts[c] = cell;
      }
      row[VV_COLUMN] = JSON.stringify({ [this.name]: 1 });
      row[CTS_COLUMN] = JSON.stringify(cts);
      s.row = row;
    } else {
      const row: Row = { ...s.row };
      const cts = parseColumnVersions(row[CTS_COLUMN]) as Record<string, unknown>;
      for (const c of COLS) {
        if (r() < 0.5) {
          row[c] = c === 'tags' ? addTag(row[c], `t${Math.floor(r() * 20)}`) : `${this.name}${this.seq}`;
          cts[c] = cell;
        }
      }
      const vv = parseVector(row[VV_COLUMN]);
      vv[this.name] = (vv[this.name] ?? 0) + 1;
      row[VV_COLUMN] = JSON.stringify(vv);
      row[CTS_COLUMN] = JSON.stringify(cts);
      s.row = row;
    }
    s.version = version;
    return { origin: this.name, key: k, kind: 'upsert', row: { ...s.row }, before: null, version };
  }

  /** Applies a remote change the way sinks/replica.ts does. */
  apply(ch: Change, resolver: ConflictResolver): Resolution {
    const s = this.state(ch.key);
    const local = {
      version: s.version && s.tomb ? (compareVersions(s.version, s.tomb) >= 0 ? s.version : s.tomb) : (s.version ?? s.tomb),
      exists: s.row !== null,
      ...(s.row ? { row: s.row } : {}),
    };
    const res = resolver.resolve(local, { kind: ch.kind, row: ch.row, version: ch.version, before: ch.before }, { sink: this.name, table: { db: 'd', schema: 'public', table: 't' }, key: { id: String(ch.key) } });
    const write = (row: Row, version: RowVersion) => {
      const out: Row = {};
      for (const [c, v] of Object.entries(row)) out[c] = isUnchanged(v) ? (s.row?.[c] ?? null) : v;
      s.row = out;
      s.version = version;
      s.tomb = null;
      this.clock = hlcObserve(this.clock, version.tsUs);
    };
    const del = (version: RowVersion) => {
      s.row = null;
      s.version = null;
      s.tomb = version;
      this.clock = hlcObserve(this.clock, version.tsUs);
    };
    switch (res.outcome) {
      case 'local':
        break;
      case 'remote':
        if (ch.kind === 'upsert') write(ch.row!, ch.version);
        else del(ch.version);
        break;
      case 'row':
        write(res.row, res.version ?? ch.version);
        break;
      case 'delete':
        del(ch.version);
        break;
    }
    return res;
  }

  /**
   * What a user sees, plus the row version (and the vector when asked: vectors agree between
   * updates, but after a delete concurrent with merged updates they may not, see the resolver).
   */
  snapshot(withVectors = false): string {
    return JSON.stringify(
      [...this.keys]
        .sort(([a], [b]) => a - b)
        .map(([k, s]) => [k, s.row ? COLS.map((c) => s.row![c] ?? null) : null, s.row ? s.version?.tsUs.toString() : null, withVectors && s.row ? parseVector(s.row[VV_COLUMN]) : null]),
    );
  }
}

function run(seed: number, resolver: ConflictResolver, deleteRate = 0.2) {
  const r = mulberry32(seed);
  const nodes = NODES.map((n, i) => new SimNode(n, [0n, 2_000_000n, -500_000n][i]!));
  const queues = new Map<string, Change[]>(); // `${to}|${origin}|${key}` → FIFO
  let wall = 1_000_000_000_000n;
  const kinds = new Map<string, number>();
  for (let step = 0; step < 1500; step++) {
    wall += BigInt(Math.floor(r() * 2000));
    if (r() < 0.45) {
      const n = nodes[Math.floor(r() * nodes.length)]!;
      const ch = n.write(Math.floor(r() * 4), wall, r, deleteRate);
      for (const o of nodes) if (o !== n) {
        const q = `${o.name}|${ch.origin}|${ch.key}`;
        queues.set(q, [...(queues.get(q) ?? []), ch]);
      }
    } else {
      const ready = [...queues].filter(([, l]) => l.length > 0);
      if (ready.length === 0) continue;
      const [q, list] = ready[Math.floor(r() * ready.length)]!;
      const ch = list.shift()!;
      const res = nodes.find((x) => x.name === q.split('|')[0])!.apply(ch, resolver);
      if (res.conflict) kinds.set(res.conflict, (kinds.get(res.conflict) ?? 0) + 1);
    }
  }
  // drain, in random order across queues
  for (;;) {
    const ready = [...queues].filter(([, l]) => l.length > 0);
    if (ready.length === 0) break;
    const [q, list] = ready[Math.floor(r() * ready.length)]!;
    const res = nodes.find((x) => x.name === q.split('|')[0])!.apply(list.shift()!, resolver);
    if (res.conflict) kinds.set(res.conflict, (kinds.get(res.conflict) ?? 0) + 1);
  }
  return { nodes, kinds };
}

describe('version-vector resolver', () => {
  it('classifies vectors', () => {
    expect(compareVectors({ a: 1 }, { a: 1 })).toBe('equal');
    expect(compareVectors({ a: 1 }, { a: 2 })).toBe('before');
    expect(compareVectors({ a: 2, b: 1 }, { a: 2 })).toBe('after');
    expect(compareVectors({ a: 2 }, { a: 1, b: 1 })).toBe('concurrent');
  });

  it('every node converges to the same rows whatever the delivery order, and concurrency is detected', () => {
    const resolver = versionVectorResolver();
    for (const seed of [1, 2, 3, 4, 5, 17, 99]) {
      const { nodes, kinds } = run(seed, resolver);
      expect(nodes[1]!.snapshot()).toBe(nodes[0]!.snapshot());
      expect(nodes[2]!.snapshot()).toBe(nodes[0]!.snapshot());
      expect(kinds.get('concurrent') ?? 0).toBeGreaterThan(0);
    }
  });

  it('without deletes, vectors agree too', () => {
    const resolver = versionVectorResolver();
    for (const seed of [11, 12]) {
      const { nodes } = run(seed, resolver, 0);
      expect(nodes[1]!.snapshot(true)).toBe(nodes[0]!.snapshot(true));
      expect(nodes[2]!.snapshot(true)).toBe(nodes[0]!.snapshot(true));
    }
  });

  it('a custom join for concurrent updates (tags: union of grow-only sets, the rest per-column LWW) converges without deletes', () => {
    let merged = 0;
    const resolver = versionVectorResolver({
      merge: (local, remote, meta) => {
        merged++;
        return { ...meta.lww, tags: String(local.tags ?? '').split(',').reduce((acc, t) => (t === '' ? acc : addTag(acc, t)), String(remote.tags ?? '')) };
      },
    });
    for (const seed of [7, 8, 9]) {
      const { nodes, kinds } = run(seed, resolver, 0);
      expect(kinds.get('concurrent') ?? 0).toBeGreaterThan(0);
      expect(nodes[1]!.snapshot()).toBe(nodes[0]!.snapshot());
      expect(nodes[2]!.snapshot()).toBe(nodes[0]!.snapshot());
    }
    expect(merged).toBeGreaterThan(0);
  });
});
