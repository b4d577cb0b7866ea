import { Kafka, logLevel, type KafkaConfig as KafkaJsConfig, type LogEntry } from 'kafkajs';
import type { KafkaConfig } from '../config/schema.js';
import { logger } from '../util/log.js';

// kafkajs logs every retriable broker response at ERROR before retrying it; what finally fails
// reaches us as a thrown error, so its ERROR lines are warnings here.
const LEVEL: Record<number, 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'warn',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/** kafkajs log lines go through our logger; its chatty INFO lines are demoted to debug. */
function logCreator() {
  const log = logger().child({ component: 'kafkajs' });
  return ({ namespace, level, log: entry }: LogEntry) => {
    const { message, ...extra } = entry;
    const lvl = LEVEL[level] ?? 'info';
    log[lvl === 'info' ? 'debug' : lvl]({ namespace, ...extra }, message);
  };
}

// We use the Java-compatible default partitioner on purpose; the notice about it is noise.
process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';

/** The Kafka client for a pipeline. All Kafka code lives in pipeline/. */
export function createKafka(cfg: Pick<KafkaConfig, 'brokers' | 'clientId'>, extra: Partial<KafkaJsConfig> = {}): Kafka {
  return new Kafka({
    clientId: cfg.clientId,
    brokers: cfg.brokers,
    logLevel: logLevel.INFO,
    logCreator,
    connectionTimeout: 3000,
    requestTimeout: 30000,
    retry: { initialRetryTime: 200, retries: 10, maxRetryTime: 10_000 },
    ...extra,
  });
}
