import type { Message } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { chunked } from './publisher.js';

const msg = (i: number, size: number): Message => ({ key: Buffer.from(String(i)), value: Buffer.alloc(size), headers: { 'cdc.schema': 'x'.repeat(10) } });

describe('chunked', () => {
  it('keeps every message once, in order, in groups under the byte limit', () => {
    const out = [
      { topic: 'a', messages: Array.from({ length: 50 }, (_, i) => msg(i, 100)) },
      { topic: 'b', messages: Array.from({ length: 30 }, (_, i) => msg(100 + i, 300)) },
    ];
    const chunks = chunked(out, 2000);
    expect(chunks.length).toBeGreaterThan(5);
    const flat = chunks.flatMap((c) => c.flatMap((t) => t.messages.map((m) => `${t.topic}:${String(m.key)}`)));
    expect(flat).toEqual([...out[0]!.messages.map((m) => `a:${String(m.key)}`), ...out[1]!.messages.map((m) => `b:${String(m.key)}`)]);
    for (const c of chunks) {
      const bytes = c.flatMap((t) => t.messages).reduce((n, m) => n + (m.value as Buffer).length, 0);
      expect(bytes).toBeLessThanOrEqual(2000);
      expect(c.every((t) => t.messages.length > 0)).toBe(true);
    }
  });

  it('sends a record larger than the limit alone', () => {
    const chunks = chunked([{ topic: 'a', messages: [msg(1, 10), msg(2, 5000), msg(3, 10)] }], 1000);
    expect(chunks.map((c) => c[0]!.messages.map((m) => String(m.key)))).toEqual([['1'], ['2'], ['3']]);
  });

  it('one chunk when everything fits', () => {
    expect(chunked([{ topic: 'a', messages: [msg(1, 10)] }, { topic: 'b', messages: [msg(2, 10)] }], 1000)).toHaveLength(1);
  });
});
