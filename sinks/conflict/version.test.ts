import { describe, expect, it } from 'vitest';
import type { ChangeEvent } from '../../schemas/change-event.js';
import { lwwResolver } from './lww.js';
import { compareVersions, logOrderKey, versionOf } from './version.js';

describe('row versions', () => {
  it('log order follows commit LSN, then position in the transaction', () => {
    const a = logOrderKey({ kind: 'pg', lsn: '0/16B3748', commitLsn: '0/16B3800', seq: 2 });
    const b = logOrderKey({ kind: 'pg', lsn: '0/16B3700', commitLsn: '0/16B3800', seq: 3 });
    const c = logOrderKey({ kind: 'pg', lsn: '0/16B3600', commitLsn: '1/0', seq: 0 });
    expect([c, b, a].sort()).toEqual([a, b, c]);
  });
  it('log order follows binlog file number, offset, then index', () => {
    const keys = [
      logOrderKey({ kind: 'mysql', file: 'binlog.000009', pos: 900, seq: 0 }),
      logOrderKey({ kind: 'mysql', file: 'binlog.000010', pos: 4, seq: 0 }),
      logOrderKey({ kind: 'mysql', file: 'binlog.000010', pos: 4, seq: 1 }),
      logOrderKey({ kind: 'mysql', file: 'binlog.000010', pos: 1000, seq: 0 }),
    ];
    expect([...keys].reverse().sort()).toEqual(keys);
  });
  it('orders by time, then origin, then log order; snapshot reads are oldest', () => {
    const base = { kind: 'pg' as const, lsn: '0/1' };
    const e = (op: ChangeEvent['op'], ts_ms: number, origin: string, lsn = '0/1') =>
      ({ op, source: { ts_ms, origin, name: 'n' }, position: { ...base, lsn } }) as unknown as ChangeEvent;
    expect(compareVersions(versionOf(e('u', 2, 'a')), versionOf(e('u', 1, 'z')))).toBe(1);
    expect(compareVersions(versionOf(e('u', 1, 'a')), versionOf(e('u', 1, 'b')))).toBe(-1);
    expect(compareVersions(versionOf(e('u', 1, 'a', '0/2')), versionOf(e('u', 1, 'a', '0/1')))).toBe(1);
    expect(versionOf(e('r', 99, 'a')).tsUs).toBe(0n);
  });
  it('lww: newer wins, equal is a duplicate, older loses; another origin overwritten is reported', () => {
    const lww = lwwResolver();
    const v = (t: number, origin = 'a') => ({ tsUs: BigInt(t), origin, order: 'x' });
    const meta = { sink: 's', table: { db: 'd', schema: null, table: 't' }, key: {} };
    expect(lww.resolve({ version: null, exists: false }, { kind: 'upsert', row: {}, version: v(1) }, meta)).toEqual({ outcome: 'remote' });
    expect(lww.resolve({ version: v(1), exists: true }, { kind: 'upsert', row: {}, version: v(1) }, meta)).toEqual({ outcome: 'local' });
    expect(lww.resolve({ version: v(2), exists: false }, { kind: 'upsert', row: {}, version: v(1) }, meta)).toEqual({ outcome: 'local', conflict: 'older' });
    expect(lww.resolve({ version: v(1, 'b'), exists: true }, { kind: 'delete', row: null, version: v(2) }, meta)).toEqual({ outcome: 'remote', conflict: 'origin-differs' });
    // A row seeded on the replica (version columns at their defaults) is replaced without a conflict.
    expect(lww.resolve({ version: { tsUs: 0n, origin: '', order: '' }, exists: true }, { kind: 'upsert', row: {}, version: v(2) }, meta)).toEqual({ outcome: 'remote' });
  });
  it('log order keys sort as the LSNs do, whatever their case; unparsable LSNs are zeros', () => {
    const k = (commitLsn: string, lsn: string, seq = 0) => logOrderKey({ kind: 'pg', lsn, commitLsn, seq });
    expect(k('0/FFFFFFFF', '0/1') < k('1/0', '0/1')).toBe(true);
    expect(k('0/a', '0/b')).toBe(k('0/A', '0/B'));
    expect(k('0/A', '0/B')).toBe(`p000000000000000a${'0'.repeat(8)}000000000000000b`);
    expect(k('x/1', '0/1')).toBe(`p${'0'.repeat(16)}${'0'.repeat(8)}0000000000000001`);
    expect(k('0/1', '0/1', 2) > k('0/1', '0/2', 1)).toBe(true);
    expect(k('', '123456789/1')).toBe(`p${'0'.repeat(16)}${'0'.repeat(8)}${'0'.repeat(16)}`);
  });
});
