import { describe, expect, it } from 'vitest';
import { CdcError } from '../schemas/errors.js';
import { backoffDelay, retry } from './retry.js';

describe('retry', () => {
  it('retries retriable errors until success', async () => {
    let calls = 0;
    const v = await retry(
      async () => {
        calls++;
        if (calls < 3) throw new CdcError('flaky', { retriable: true });
        return 'ok';
      },
      { initialDelayMs: 1, maxDelayMs: 2 },
    );
    expect(v).toBe('ok');
    expect(calls).toBe(3);
  });

  it('does not retry permanent errors', async () => {
    let calls = 0;
    await expect(
      retry(async () => {
        calls++;
        throw new CdcError('auth failed', { retriable: false });
      }),
    ).rejects.toThrow('auth failed');
    expect(calls).toBe(1);
  });

  it('gives up after maxAttempts', async () => {
    let calls = 0;
    await expect(
      retry(
        async () => {
          calls++;
          throw new CdcError('down', { retriable: true });
        },
        { initialDelayMs: 1, maxAttempts: 4 },
      ),
    ).rejects.toThrow('down');
    expect(calls).toBe(4);
  });

  it('grows the delay exponentially up to the cap', () => {
    const o = { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0 };
    expect([1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, o))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });
});
