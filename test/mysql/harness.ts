// Shared set-up for the MySQL/MariaDB source integration tests: private databases on the shared
// MariaDB source, the connector running through the real source runner and (transactional)
// publisher, and readers of the topics it writes.
import { randomInt } from 'node:crypto';
import mysql from 'mysql2/promise';
import { type PipelineConfig, pipelineConfig } from '../../config/schema.js';
import { createMysqlSource } from '../../connectors/mysql/index.js';
import type { MysqlSourceHooks } from '../../connectors/mysql/options.js';
import { type SourceTopics, pipelineTopics, sourceTopics } from '../../pipeline/topics.js';
import { type ChangeEvent, HEADER, type SourcePosition, type TransactionEvent, decodePosition, jsonCodec } from '../../schemas/index.js';
import type { Logger } from '../../util/log.js';
import { consumeUntil, env, type Msg, type Running, runTestSource, testKafka, uniq } from '../helpers.js';
import { createTopicOn, deleteTopicsOn, waitForTopicsOn } from '../kafka-admin.js';

export const kafka = testKafka();

/** A server_id no other test run uses (the issue: random in 10000..4000000000). */
export function randomServerId(): number {
  return randomInt(10_000, 4_000_000_000);
}

export async function sql(url = env.mariaSource): Promise<mysql.Connection> {
  return mysql.createConnection({ uri: url, supportBigNumbers: true, bigNumberStrings: true, dateStrings: true, multipleStatements: true });
}

export interface TestDb {
  name: string;
  conn: mysql.Connection;
  q<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
}

export async function createTestDb(prefix = 't_my'): Promise<TestDb> {
  const name = uniq(prefix);
  const conn = await sql();
  await conn.query(`CREATE DATABASE \`${name}\``);
  await conn.query(`USE \`${name}\``);
  return { name, conn, q: async (text, params = []) => (await conn.query(text, params))[0] as never };
}

export async function dropTestDb(db: TestDb | undefined): Promise<void> {
  if (!db) return;
  await db.conn.query(`DROP DATABASE IF EXISTS \`${db.name}\``).catch(() => undefined);
  await db.conn.end().catch(() => undefined);
}

export function testConfig(dbs: string[], opts: { prefix?: string; mysql?: Record<string, unknown>; source?: Record<string, unknown> } = {}): PipelineConfig {
  return pipelineConfig.parse({
    name: opts.prefix ?? uniq('mysrc'),
    kafka: { brokers: env.kafka.split(','), partitions: 3 },
    sources: [
      {
        name: 'my',
        url: env.mariaSource,
        tables: { include: dbs.map((d) => `${d}.*`) },
        ...opts.source,
        mysql: { serverId: randomServerId(), heartbeatIntervalMs: 1000, ...opts.mysql },
      },
    ],
    log: { level: 'error' },
  });
}

export function topicsOf(cfg: PipelineConfig): SourceTopics {
  return sourceTopics(cfg.kafka.topicPrefix ?? cfg.name, cfg.sources[0]!.name);
}

export function offsetsTopic(cfg: PipelineConfig): string {
  return pipelineTopics(cfg.kafka.topicPrefix ?? cfg.name).offsets;
}

export type { Running };

/** Runs the connector in this process through the real runner and the transactional publisher. */
export function startSource(cfg: PipelineConfig, hooks: MysqlSourceHooks = {}, log?: Logger): Running {
  return runTestSource(cfg, createMysqlSource(cfg.sources[0]!, cfg, hooks), kafka, jsonCodec(), { log, transactional: true });
}

export type { Msg };

/** Reads topics (read_committed) from the beginning until `until(all so far)` holds. */
export function collect(topics: string[], until: (msgs: Msg[]) => boolean, timeoutMs = 60_000): Promise<Msg[]> {
  return consumeUntil(kafka, topics, until, { timeoutMs, group: 'my-test', maxBytesPerPartition: 32 * 1024 * 1024, before: () => waitForTopics(topics, timeoutMs) });
}

/**
 * Every committed record of `topics` up to their current ends. Ends are high watermarks, which
 * count transaction markers; a partition is done when the consumer reports no lag for it.
 */
export async function readAll(topics: string[], timeoutMs = 120_000): Promise<Msg[]> {
  const admin = kafka.admin();
  await admin.connect();
  const pending = new Set<string>();
  try {
    for (const t of topics) for (const o of await admin.fetchTopicOffsets(t)) if (Number(o.high) > 0) pending.add(`${t}/${o.partition}`);
  } finally {
    await admin.disconnect();
  }
  if (pending.size === 0) return [];
  const consumer = kafka.consumer({ groupId: uniq('my-readall'), allowAutoTopicCreation: false, maxBytesPerPartition: 32 * 1024 * 1024, readUncommitted: false });
  const got: Msg[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      let idle: NodeJS.Timeout | undefined;
      const timer = setTimeout(() => reject(new Error(`readAll timed out (${got.length} records)`)), timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        if (idle) clearTimeout(idle);
        resolve();
      };
      consumer
        .run({
          eachBatchAutoResolve: true,
          eachBatch: async ({ batch }) => {
            for (const m of batch.messages) got.push({ ...m, topic: batch.topic, partition: batch.partition });
            if (batch.offsetLag() === '0') pending.delete(`${batch.topic}/${batch.partition}`);
            if (pending.size === 0) finish();
            else {
              // Partitions whose tail is a transaction marker report no more batches: an idle
              // second after the last batch ends the read.
              if (idle) clearTimeout(idle);
              idle = setTimeout(finish, 3000);
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return got;
}

export const waitForTopics = (topics: string[], timeoutMs = 60_000): Promise<void> => waitForTopicsOn(kafka, topics, timeoutMs);
export const createTopic = (topic: string, partitions: number, configs: Record<string, string> = {}): Promise<void> => createTopicOn(kafka, topic, partitions, configs);
export const deleteTopics = (prefix: string): Promise<void> => deleteTopicsOn(kafka, prefix);

export function changeOf(m: Msg): ChangeEvent | null {
  if (m.value === null) return null;
  const env = JSON.parse(m.value.toString('utf8')) as Omit<ChangeEvent, 'schema' | 'position'>;
  const schema = m.headers?.[HEADER.schema]?.toString();
  const position = m.headers?.[HEADER.position]?.toString();
  return { ...env, schema: schema ? JSON.parse(schema) : null, position: position ? decodePosition(position) : (null as unknown as SourcePosition) } as ChangeEvent;
}

export function txOf(m: Msg): TransactionEvent {
  const position = m.headers?.[HEADER.position]?.toString();
  return { ...(JSON.parse(m.value!.toString('utf8')) as Omit<TransactionEvent, 'position'>), position: decodePosition(position!) };
}

/** Waits until `check` holds, polling. */
export async function eventually<T>(check: () => Promise<T | undefined | null | false>, timeoutMs = 60_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The checkpoints stored for the source, oldest first (the offsets topic is compacted lazily). */
export async function storedCheckpoints(cfg: PipelineConfig): Promise<SourcePosition[]> {
  const msgs = await readAll([offsetsTopic(cfg)]);
  return msgs.filter((m) => m.key?.toString() === cfg.sources[0]!.name && m.value !== null).map((m) => decodePosition(m.value!.toString()));
}
