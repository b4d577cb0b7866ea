import { describe, expect, it } from 'vitest';
import type { SourceRecord } from '../../connectors/source.js';
import { sliceRecords } from './incremental.js';

const rec = (n: number, size: number): SourceRecord => ({ type: 'heartbeat', position: { kind: 'pg', lsn: `0/${n}` }, ts_ms: size });

describe('sliceRecords', () => {
  it('keeps order and bounds each slice by count', () => {
    const recs = Array.from({ length: 25 }, (_, i) => rec(i, 0));
    const slices = sliceRecords(recs, 1e9, 10);
    expect(slices.map((s) => s.length)).toEqual([10, 10, 5]);
    expect(slices.flat()).toEqual(recs);
  });
  it('bounds by estimated bytes and never returns an empty list of slices', () => {
    expect(sliceRecords(Array.from({ length: 4 }, (_, i) => rec(i, 0)), 600, 100).map((s) => s.length)).toEqual([2, 2]);
    expect(sliceRecords([], 10, 10)).toEqual([[]]);
  });
});
