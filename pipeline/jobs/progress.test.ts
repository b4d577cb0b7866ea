import { describe, expect, it } from 'vitest';
import { formatDuration, progressView } from './progress.js';

describe('progress numbers', () => {
  it('rate and ETA from committed rows', () => {
    const v = progressView({ table: 't', chunks: 10, chunksDone: 4, estRows: 1000, rowsDone: 400, startedAt: 0, endedAt: 4000 }, 4000);
    expect(v.rate).toBe(100);
    expect(v.etaS).toBe(6);
    expect(v.done).toBe(false);
  });
  it('never shows less to do than is done, and no ETA before the first chunk', () => {
    expect(progressView({ table: 't', chunks: 2, chunksDone: 1, estRows: 10, rowsDone: 50, startedAt: 0, endedAt: 1000 }, 1000).estRows).toBe(50);
    expect(progressView({ table: 't', chunks: 2, chunksDone: 0, estRows: 10, rowsDone: 0, startedAt: null, endedAt: null }).etaS).toBeNull();
  });
  it('a finished table reports its own rate and total', () => {
    const v = progressView({ table: 't', chunks: 2, chunksDone: 2, estRows: 90, rowsDone: 100, startedAt: 0, endedAt: 2000 }, 60_000);
    expect(v).toMatchObject({ done: true, estRows: 100, rate: 50, etaS: 0 });
    expect(formatDuration(3725)).toBe('1h02m');
    expect(formatDuration(65)).toBe('1m05s');
  });
});
