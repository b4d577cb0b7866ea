import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { tombstoneHash } from './replica.js';

describe('tombstone key hash', () => {
  it('is the first 40 hex digits of SHA-256 of the key text (tombstones already stored are found by it)', () => {
    for (const k of ['["1"]', '["a\\"b","ü"]', '[null]', '']) expect(tombstoneHash(k)).toBe(createHash('sha256').update(k, 'utf8').digest('hex').slice(0, 40));
    expect(tombstoneHash('["1"]')).toBe('43de3a417d75f4818c5a553268b80ce3a5805109');
  });
});
