import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type PgoutputMessage, type ReplicationFrame, DecodeError, TOAST_UNCHANGED, decodeFrame, decodePgoutput, encodeStatusUpdate } from './decode.js';
import { formatLsn } from './lsn.js';

// Wire bytes captured from PostgreSQL 15 while running, in order:
//   insert into t values (1, repeat('x', 3000), 'happy', 12.34, '2026-01-02 03:04:05.678901+00')  (big: storage external)
//   update t set n = 1 where id = 1; update t set id = 2 where id = 1; delete from t where id = 2
//   insert into full_t values (1, 'a'); update full_t set v = 'b'  (replica identity full)
//   truncate t, full_t
const fixture = JSON.parse(readFileSync(new URL('./fixtures/pgoutput-frames.json', import.meta.url), 'utf8')) as { frames: string[] };
const frames = fixture.frames.map((h) => decodeFrame(Buffer.from(h, 'hex')) as Extract<ReplicationFrame, { kind: 'xlog' }>);
const msgs = frames.map((f) => decodePgoutput(f.data));
const tags = msgs.map((m) => m.tag);
const of = <T extends PgoutputMessage['tag']>(tag: T, n = 0) => msgs.filter((m) => m.tag === tag)[n] as Extract<PgoutputMessage, { tag: T }>;

describe('pgoutput decoder on captured PostgreSQL 15 bytes', () => {
  it('sees the statements as transactions in order', () => {
    expect(frames.every((f) => f.kind === 'xlog')).toBe(true);
    expect(tags).toEqual([
      'begin', 'type', 'relation', 'insert', 'commit',
      'begin', 'update', 'commit',
      'begin', 'update', 'commit',
      'begin', 'delete', 'commit',
      'begin', 'relation', 'insert', 'commit',
      'begin', 'update', 'commit',
      'begin', 'type', 'relation', 'relation', 'truncate', 'commit',
    ]);
  });

  it('decodes Relation messages with identity flags, type OIDs and typmods', () => {
    const t = of('relation', 0);
    expect(t).toMatchObject({ namespace: 'public', name: 't', replicaIdentity: 'd' });
    expect(t.columns.map((c) => [c.name, c.flags, c.typeOid])).toEqual([
      ['id', 1, 23],
      ['big', 0, 25],
      ['m', 0, of('type').typeOid],
      ['n', 0, 1700],
      ['ts', 0, 1184],
    ]);
    expect(t.columns[3]!.typmod).toBe(((10 << 16) | 2) + 4);
    expect(of('type')).toMatchObject({ namespace: 'public', name: 'mood' });
    expect(of('relation', 1)).toMatchObject({ name: 'full_t', replicaIdentity: 'f' });
    expect(of('relation', 1).columns.map((c) => c.flags)).toEqual([1, 1]);
  });

  it('keeps tuple values as printed text, with the unchanged-TOAST marker and old tuples', () => {
    const ins = of('insert');
    expect(ins.newTuple[0]).toBe('1');
    expect(ins.newTuple[1]).toBe('x'.repeat(3000));
    expect(ins.newTuple.slice(2)).toEqual(['happy', '12.34', '2026-01-02 03:04:05.678901+00']);

    const toast = of('update', 0);
    expect(toast.oldKind).toBeNull();
    expect(toast.newTuple[1]).toBe(TOAST_UNCHANGED);
    expect(toast.newTuple[3]).toBe('1.00');

    const keyChange = of('update', 1);
    expect(keyChange.oldKind).toBe('K');
    expect(keyChange.oldTuple).toEqual(['1', null, null, null, null]);
    expect(keyChange.newTuple[0]).toBe('2');

    expect(of('delete')).toMatchObject({ oldKind: 'K', oldTuple: ['2', null, null, null, null] });
    expect(of('update', 2)).toMatchObject({ oldKind: 'O', oldTuple: ['1', 'a'], newTuple: ['1', 'b'] });
    expect(of('truncate')).toMatchObject({ relationIds: [of('relation', 0).relationId, of('relation', 1).relationId], cascade: false, restartIdentity: false });
  });

  it('links Begin and Commit by LSN and puts the commit end LSN in the XLogData header', () => {
    for (let i = 0; i < msgs.length; i++) {
      const m = msgs[i]!;
      if (m.tag !== 'commit') continue;
      const begin = [...msgs.slice(0, i)].reverse().find((x) => x.tag === 'begin') as Extract<PgoutputMessage, { tag: 'begin' }>;
      expect(begin.finalLsn).toBe(m.commitLsn);
      expect(m.endLsn > m.commitLsn).toBe(true);
      expect(frames[i]!.dataStart).toBe(m.endLsn);
      expect(begin.commitTimeUs).toBe(m.commitTimeUs);
    }
    // Commit time is microseconds since the Unix epoch (captured in 2026).
    const ts = Number(of('begin').commitTimeUs / 1000n);
    expect(new Date(ts).getUTCFullYear()).toBeGreaterThanOrEqual(2025);
  });

  it('fails loudly on truncated or unknown input', () => {
    const ins = Buffer.from(fixture.frames[3]!, 'hex');
    expect(() => decodePgoutput(ins.subarray(25, ins.length - 10))).toThrow(DecodeError);
    expect(() => decodePgoutput(Buffer.from('Z'))).toThrow(/unknown pgoutput message/);
    expect(() => decodeFrame(Buffer.from([0x41]))).toThrow(/unknown replication frame/);
  });
});

describe('replication frames', () => {
  it('decodes a keepalive and encodes a status update', () => {
    const k = Buffer.alloc(18);
    k[0] = 0x6b;
    k.writeBigUInt64BE(0x1_0000_0010n, 1);
    k.writeBigInt64BE(0n, 9);
    k[17] = 1;
    const f = decodeFrame(k);
    expect(f).toMatchObject({ kind: 'keepalive', replyRequested: true });
    expect(formatLsn((f as { walEnd: bigint }).walEnd)).toBe('1/10');

    const r = encodeStatusUpdate(0x20n, 0x10n, 946_684_800_000_000n + 5n);
    expect(r.length).toBe(34);
    expect(r[0]).toBe(0x72);
    expect(r.readBigUInt64BE(1)).toBe(0x20n);
    expect(r.readBigUInt64BE(9)).toBe(0x10n);
    expect(r.readBigUInt64BE(17)).toBe(0x10n);
    expect(r.readBigInt64BE(25)).toBe(5n);
    expect(r[33]).toBe(0);
  });
});
