import { describe, expect, it } from 'vitest';
import { MariaGtidList, MysqlGtidSet, parseMariaGtid } from './gtid.js';

describe('MariaDB GTID lists', () => {
  it('parses, updates per domain and prints sorted by domain', () => {
    const l = MariaGtidList.parse('1-1-8, 0-2-100');
    expect(l.toString()).toBe('0-2-100,1-1-8');
    l.update(parseMariaGtid('1-3-9'));
    l.update(parseMariaGtid('5-1-1'));
    expect(l.toString()).toBe('0-2-100,1-3-9,5-1-1');
    expect(l.contains(parseMariaGtid('1-1-9'))).toBe(true);
    expect(l.contains(parseMariaGtid('1-1-10'))).toBe(false);
    expect(l.contains(parseMariaGtid('7-1-1'))).toBe(false);
    expect(MariaGtidList.parse('').toString()).toBe('');
  });
  it('keeps 64-bit sequence numbers exact', () => {
    expect(MariaGtidList.parse('0-1-18446744073709551615').toString()).toBe('0-1-18446744073709551615');
  });
  it('rejects malformed GTIDs', () => {
    expect(() => MariaGtidList.parse('1-1')).toThrow(/domain-server-seq/);
  });
});

describe('MySQL GTID sets', () => {
  const A = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
  const B = '57b70f4e-20d3-11e5-a393-4a63946f7eac';
  it('parses, merges adjacent intervals and prints canonically', () => {
    const s = MysqlGtidSet.parse(`${B.toUpperCase()}:1-3:7, ${A}:1-5`);
    s.add(A, 6n);
    s.add(B, 4n);
    s.add(B, 5n);
    expect(s.toString()).toBe(`${A}:1-6,${B}:1-5:7`);
    s.add(B, 6n);
    expect(s.toString()).toBe(`${A}:1-6,${B}:1-7`);
    expect(s.contains(A, 6n)).toBe(true);
    expect(s.contains(A, 7n)).toBe(false);
  });

  it('encodes the COM_BINLOG_DUMP_GTID / PREVIOUS_GTIDS binary form (end exclusive) and decodes it back', () => {
    const s = MysqlGtidSet.parse(`${A}:1-5:10`);
    const b = s.encode();
    // n_sids=1 | sid | n_intervals=2 | [1,6) | [10,11)
    expect(b.toString('hex')).toBe(
      '0100000000000000' + A.replace(/-/g, '') + '0200000000000000' + '0100000000000000' + '0600000000000000' + '0a00000000000000' + '0b00000000000000',
    );
    expect(MysqlGtidSet.decode(b).toString()).toBe(`${A}:1-5:10`);
  });

  it('refuses tagged GTIDs (MySQL 8.3+) clearly', () => {
    expect(() => MysqlGtidSet.parse(`${A}:tag:1-5`)).toThrow(/tagged GTIDs/);
  });
});
