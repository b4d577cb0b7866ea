import { describe, expect, it } from 'vitest';
import { ConfigError } from '../schemas/errors.js';
import { parseConfig } from './load.js';

const good = `
name: demo
kafka:
  brokers: ["127.0.0.1:19092"]
sources:
  - name: pg
    url: postgres://postgres:\${PGPASS}@127.0.0.1:55432/app
sinks:
  - name: replica
    url: mysql://root@127.0.0.1:33307/app
    sources: [pg]
`;

function problems(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(text, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected the config to be rejected');
}

describe('parseConfig', () => {
  it('accepts a good file, fills defaults and interpolates env vars', () => {
    const cfg = parseConfig(good, { PGPASS: 's3cret' });
    expect(cfg.sources[0]?.url).toBe('postgres://postgres:s3cret@127.0.0.1:55432/app');
    expect(cfg.kafka.partitions).toBe(3);
    expect(cfg.sinks[0]?.mode).toBe('key');
    expect(cfg.sinks[0]?.conflict.strategy).toBe('lww');
    expect(cfg.redis.url).toBe('redis://127.0.0.1:6379');
  });

  it('names an unset env var without printing any value', () => {
    expect(problems(good)).toEqual(['sources[0].url: environment variable PGPASS is not set']);
  });

  it('reports a missing field', () => {
    expect(problems('name: demo\n')).toEqual(['kafka: required']);
  });

  it('reports a wrong type', () => {
    expect(problems('name: demo\nkafka:\n  brokers: ["a:1"]\n  partitions: "three"\n')).toEqual([
      'kafka.partitions: expected number, got string',
    ]);
  });

  it('reports a bad URL with the expected form', () => {
    const text = good.replace('mysql://root@127.0.0.1:33307/app', 'http://nope');
    expect(problems(text, { PGPASS: 'x' })).toEqual(['sinks[0].url: expected postgres:// or mysql:// URL']);
  });

  it('reports an unknown key', () => {
    const text = good.replace('    sources: [pg]', '    sources: [pg]\n    batchSzie: 10');
    expect(problems(text, { PGPASS: 'x' })).toEqual(['sinks[0].batchSzie: unknown key']);
  });

  it('reports cross-field problems', () => {
    const text = good.replace('sources: [pg]', 'sources: [nope]');
    expect(problems(text, { PGPASS: 'x' })).toEqual(['sinks[0].sources[0]: no source named "nope"']);
  });

  it('reports invalid YAML with its line', () => {
    const [line] = problems('name: demo\nkafka: [\n');
    expect(line).toMatch(/^config:\d+:\d+: invalid YAML/);
  });
});
