import { describe, expect, it } from 'vitest';
import { sourceTopics, topicPart } from './topics.js';

describe('topic names', () => {
  it('follows <prefix>.<db>.<schema>.<table>', () => {
    const t = sourceTopics('cdc', 'pg1');
    expect(t.table({ db: 'app', schema: 'public', table: 'users' })).toBe('cdc.pg1.app.public.users');
    expect(t.table({ db: 'shop', schema: null, table: 'orders' })).toBe('cdc.pg1.shop.orders');
    expect(t.transaction).toBe('cdc.pg1.transaction');
  });

  it('makes hostile names legal and keeps them distinct', () => {
    const a = topicPart('we"ird;drop table x');
    const b = topicPart('we_ird_drop table x');
    expect(a).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(b).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(a).not.toBe(b);
    expect(topicPart('a.b')).not.toBe(topicPart('a_b'));
    expect(topicPart('plain_name-1')).toBe('plain_name-1');
  });
});
