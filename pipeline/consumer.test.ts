import { describe, expect, it } from 'vitest';
import { tableTopicMatcher } from './consumer.js';
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
