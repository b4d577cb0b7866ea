import { describe, expect, it } from 'vitest';
import type { KafkaMessage } from 'kafkajs';
import { fromOffset, tableTopicMatcher } from './consumer.js';
import { sourceTopics } from './topics.js';

describe('tableTopicMatcher', () => {
  const match = tableTopicMatcher([sourceTopics('demo', 'pg'), sourceTopics('demo', 'my')]);
  it('takes table topics of the listed sources only', () => {
    const pg = sourceTopics('demo', 'pg');
    const my = sourceTopics('demo', 'my');
    expect(match(pg.table({ db: 'app', schema: 'public', table: 'users' }))).toBe(0);
    expect(match(my.table({ db: 'shop', schema: null, table: 'we"ird;tab le' }))).toBe(1);
    expect(match(sourceTopics('demo', 'other').table({ db: 'a', schema: null, table: 'b' }))).toBe(-1);
    expect(match(sourceTopics('demox', 'pg').table({ db: 'a', schema: null, table: 'b' }))).toBe(-1);
  });
  it('leaves out the sources own topics', () => {
    for (const t of ['demo.pg.transaction', 'demo.pg.heartbeat', 'demo.my.schema-history', 'demo.my.parked', 'demo.offsets', 'demo.dlq.r']) expect(match(t)).toBe(-1);
  });
});

describe('fromOffset', () => {
  const msgs = ['7', '8', '10', '11'].map((offset) => ({ offset }) as KafkaMessage);
  it('keeps the messages at or after the offset, in order, without copying when all are kept', () => {
    expect(fromOffset(msgs, '0')).toBe(msgs);
    expect(fromOffset(msgs, '7')).toBe(msgs);
    expect(fromOffset(msgs, '9').map((m) => m.offset)).toEqual(['10', '11']);
    expect(fromOffset(msgs, '11').map((m) => m.offset)).toEqual(['11']);
    expect(fromOffset(msgs, '12')).toEqual([]);
    expect(fromOffset(msgs, '9007199254740993')).toEqual([]);
  });
});
