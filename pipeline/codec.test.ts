import { Kafka } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { ConfigError } from '../schemas/errors.js';
import { createCodec } from './codec.js';

const base = (kafka: string) => `
name: demo
kafka:
  brokers: ["127.0.0.1:19092"]
${kafka}
`;

function problems(text: string): string[] {
  try {
    parseConfig(text, {});
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected the config to be rejected');
}

// Never connected: a codec opens Kafka connections only when it first stores or looks up a schema.
const unused = new Kafka({ brokers: ['127.0.0.1:9'] });

describe('kafka.encoding and kafka.schemaRegistry', () => {
  it('picks JSON by default and Avro with a registry', () => {
    expect(createCodec(parseConfig(base(''), {}), unused).name).toBe('json');
    const cfg = parseConfig(base('  encoding: avro\n  schemaRegistry:\n    url: http://u:p@127.0.0.1:18081/apis/ccompat/v7'), {});
    expect(cfg.kafka.schemaRegistry).toEqual({ url: 'http://u:p@127.0.0.1:18081/apis/ccompat/v7', compatibility: 'BACKWARD', timeoutMs: 10_000 });
    expect(createCodec(cfg, unused).name).toBe('avro');
  });

  it('says in one line what is wrong', () => {
    expect(problems(base('  encoding: avro'))).toEqual(['kafka.schemaRegistry: required when kafka.encoding is avro']);
    expect(problems(base('  encoding: avro\n  schemaRegistry:\n    url: ftp://x'))).toEqual(['kafka.schemaRegistry.url: expected an http(s) URL']);
    expect(problems(base('  encoding: protobuf'))).toHaveLength(1);
    expect(problems(base('  encoding: avro\n  schemaRegistry:\n    url: http://x:8081\n    compatibility: SIDEWAYS'))[0]).toMatch(/^kafka\.schemaRegistry\.compatibility: /);
    expect(problems(base('  encoding: avro\n  schemaRegistry:\n    url: http://x:8081\n    urll: y'))[0]).toMatch(/^kafka\.schemaRegistry\.urll: unknown key/);
  });
});
