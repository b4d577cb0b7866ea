import type { Kafka } from 'kafkajs';
import type { PipelineConfig } from '../config/schema.js';
import { avroCodec } from '../schemas/avro/codec.js';
import { jsonCodec } from '../schemas/codec/json.js';
import type { EventCodec } from '../schemas/codec/types.js';
import { ConfigError } from '../schemas/errors.js';
import { httpSchemaRegistry } from './schema-registry.js';
import { kafkaSchemaStore } from './schema-store.js';
import { type SourceTopics, pipelineTopics, sourceTopics, tableTopicSpec } from './topics.js';

/**
 * The codec `kafka.encoding` asks for: JSON (Debezium envelope, the table schema named by a
 * header and kept in the `<prefix>.schemas` topic, or inline per `kafka.jsonSchemas`), or Avro in
 * the Confluent wire format with schemas in `kafka.schemaRegistry` (subjects `<topic>-key` /
 * `<topic>-value`). Sources and sinks of one pipeline must use the same one. Close it when done.
 */
export function createCodec(cfg: PipelineConfig, kafka: Kafka): EventCodec {
  const prefix = cfg.kafka.topicPrefix ?? cfg.name;
  // Connects only when used: an Avro pipeline needs it only for JSON records from before a switch.
  const store = kafkaSchemaStore({ kafka, topic: pipelineTopics(prefix).schemas, topicSpec: tableTopicSpec(cfg.kafka) });
  if (cfg.kafka.encoding === 'json') return jsonCodec({ store, inline: cfg.kafka.jsonSchemas === 'inline' });
  const reg = cfg.kafka.schemaRegistry;
  if (!reg) throw new ConfigError(['kafka.schemaRegistry: required when kafka.encoding is avro']);
  const topics = new Map<string, SourceTopics>();
  const of = (source: string): SourceTopics => {
    let t = topics.get(source);
    if (!t) topics.set(source, (t = sourceTopics(prefix, source)));
    return t;
  };
  return avroCodec({
    registry: httpSchemaRegistry({ url: reg.url, timeoutMs: reg.timeoutMs }),
    topicOf: (e) => of(e.source.name).table(e.schema.id),
    transactionTopicOf: (t) => of(t.source).transaction,
    compatibility: reg.compatibility,
    jsonSchemaStore: store,
  });
}
