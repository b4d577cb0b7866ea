// Shared set-up for the PostgreSQL source integration tests: a private database on the shared
// source server, the connector running through the real source runner and publisher, and
// readers of the topics it writes.
import pg from 'pg';
import { type PipelineConfig, pipelineConfig } from '../../config/schema.js';
import { createPostgresSource } from '../../connectors/postgres/index.js';
import type { PostgresSourceHooks } from '../../connectors/postgres/options.js';
import type { SourceRecord } from '../../connectors/source.js';
import { type SourceTopics, sourceTopics } from '../../pipeline/topics.js';
import { type ChangeEvent, HEADER, type TransactionEvent, jsonCodec } from '../../schemas/index.js';
import { type Logger, createLogger } from '../../util/log.js';
import { TEST_RETRY, retry } from '../../util/retry.js';
import { consumeUntil, env, type Msg, type Running, runTestSource, testKafka, uniq } from '../helpers.js';
import { createTopicOn, deleteTopicsOn, topicCodecs, waitForTopicsOn } from '../kafka-admin.js';

export const kafka = testKafka();

/** Query results as raw text, like the connector sees them. */
const RAW = { getTypeParser: () => (v: string) => v };

export interface TestDb {
  name: string;
  url: string;
  client: pg.Client;
  q(text: string, params?: unknown[]): Promise<Record<string, string | null>[]>;
}

function urlFor(db: string): string {
  const u = new URL(env.pgSource);
  u.pathname = `/${db}`;
  return u.toString();
}

export async function adminQuery(text: string, params: unknown[] = []): Promise<Record<string, string | null>[]> {
  const c = new pg.Client({ connectionString: env.pgSource, types: RAW });
  await c.connect();
  try {
    return (await c.query(text, params)).rows as Record<string, string | null>[];
  } finally {
    await c.end();
  }
}

export async function createTestDb(prefix = 't'): Promise<TestDb> {
  const name = uniq(prefix);
  await adminQuery(`create database ${name}`);
  const url = urlFor(name);
  const client = new pg.Client({ connectionString: url, types: RAW });
  await client.connect();
  return { name, url, client, q: async (text, params = []) => (await client.query(text, params)).rows as Record<string, string | null>[] };
}

/** Drops the database's slots (after ending their walsenders) and the database itself. */
export async function dropTestDb(db: TestDb | undefined): Promise<void> {
  if (!db) return;
  await db.client.end().catch(() => undefined);
  for (let i = 0; i < 50; i++) {
    await adminQuery(`select pg_terminate_backend(active_pid) from pg_replication_slots where database = $1 and active_pid is not null`, [db.name]);
    const left = await adminQuery(`select slot_name from pg_replication_slots where database = $1 and not active`, [db.name]);
    for (const r of left) await adminQuery(`select pg_drop_replication_slot($1)`, [r.slot_name]).catch(() => undefined);
    const remaining = await adminQuery(`select count(*)::int as n from pg_replication_slots where database = $1`, [db.name]);
    if (remaining[0]?.n === '0') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await adminQuery(`drop database if exists ${db.name} with (force)`);
}

export function testConfig(db: Pick<TestDb, 'name' | 'url'>, opts: { prefix?: string; source?: Record<string, unknown>; postgres?: Record<string, unknown> } = {}): PipelineConfig {
  return pipelineConfig.parse({
    name: opts.prefix ?? uniq('pgsrc'),
    kafka: { brokers: env.kafka.split(','), partitions: 3 },
    sources: [{ name: 'pg', url: db.url, ...opts.source, postgres: { slot: db.name, publication: db.name, heartbeatIntervalMs: 0, ...opts.postgres } }],
    log: { level: 'error' },
    // The stream alone: initial snapshots are the snapshot engine's (and its tests').
    snapshot: { mode: 'never' },
  });
}

export function topicsOf(cfg: PipelineConfig): SourceTopics {
  return sourceTopics(cfg.kafka.topicPrefix ?? cfg.name, cfg.sources[0]!.name);
}

export type { Running };

/** Runs the connector in this process through the real runner and publisher. */
export function startSource(cfg: PipelineConfig, hooks: PostgresSourceHooks = {}, log?: Logger): Running {
  return runTestSource(cfg, createPostgresSource(cfg.sources[0]!, cfg, hooks), kafka, jsonCodec(), { log });
}

/**
 * Runs the connector alone, with a publish that only records what it is given (no runner, no
 * Kafka): for checks of what the connector emits before the pipeline's hooks touch it.
 */
export function captureSource(cfg: PipelineConfig): { records: SourceRecord[]; stop(): Promise<void> } {
  const source = cfg.sources[0]!;
  const ac = new AbortController();
  const connector = createPostgresSource(source, cfg);
  const records: SourceRecord[] = [];
  // Retried like the source runner does (a concurrent start can make one attempt fail).
  const done = retry(
    () =>
      connector.run({
        publish: async (b) => void records.push(...b.records),
        loadCheckpoint: async () => null,
        log: createLogger(process.env.CDC_LOG_LEVEL ?? 'error'),
        signal: ac.signal,
      }),
    { ...TEST_RETRY, signal: ac.signal, onRetry: (err) => console.warn(`captureSource: ${(err as Error).message}; retrying`) },
  ).catch((err: unknown) => {
    if (!ac.signal.aborted) console.error(`captureSource: ${(err as Error).message}`);
  });
  return {
    records,
    async stop() {
      ac.abort();
      await done;
      await connector.close();
    },
  };
}

export type { Msg };

/** Reads topics from the beginning until `until(all messages so far)` holds, or fails after the timeout. */
export function collect(topics: string[], until: (msgs: Msg[]) => boolean, timeoutMs = 60_000): Promise<Msg[]> {
  return consumeUntil(kafka, topics, until, { timeoutMs, group: 'pg-test', maxBytesPerPartition: 16 * 1024 * 1024, before: () => waitForTopics(topics, timeoutMs) });
}

/** Every record of `topics` up to their current ends (high watermarks read first). */
export async function readAll(topics: string[], timeoutMs = 120_000): Promise<Msg[]> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map<string, number>();
  try {
    for (const t of topics) for (const o of await admin.fetchTopicOffsets(t)) if (Number(o.high) > 0) ends.set(`${t}/${o.partition}`, Number(o.high));
  } finally {
    await admin.disconnect();
  }
  if (ends.size === 0) return [];
  const done = new Set<string>();
  return collect(
    topics,
    (msgs) => {
      const m = msgs.at(-1);
      if (!m) return false;
      const k = `${m.topic}/${m.partition}`;
      if (Number(m.offset) + 1 >= (ends.get(k) ?? 0)) done.add(k);
      return done.size === ends.size;
    },
    timeoutMs,
  );
}

export const waitForTopics = (topics: string[], timeoutMs = 60_000): Promise<void> => waitForTopicsOn(kafka, topics, timeoutMs);
export const createTopic = (topic: string, partitions: number, configs: Record<string, string> = {}): Promise<void> => createTopicOn(kafka, topic, partitions, configs);
export const deleteTopics = (prefix: string): Promise<void> => deleteTopicsOn(kafka, prefix);

const codecOf = topicCodecs(kafka);

function headers(m: Msg): Record<string, string> {
  return Object.fromEntries(Object.entries(m.headers ?? {}).map(([k, v]) => [k, String(v)]));
}

export async function changeEvent(m: Msg): Promise<ChangeEvent | null> {
  return codecOf(m.topic).decodeChange({ key: m.key, value: m.value, headers: headers(m) });
}

export async function txEvent(m: Msg): Promise<TransactionEvent> {
  return codecOf(m.topic).decodeTransaction({ key: m.key, value: m.value, headers: headers(m) });
}

/** Decoded change events (tombstones dropped), truncates counted once (they go to every partition). */
export async function changes(msgs: Msg[]): Promise<ChangeEvent[]> {
  const out: ChangeEvent[] = [];
  const seenTruncates = new Set<string>();
  for (const m of msgs) {
    if (m.value === null || (!m.headers?.[HEADER.schema] && !m.headers?.[HEADER.schemaRef])) continue;
    const e = await changeEvent(m);
    if (!e) continue;
    if (e.op === 't') {
      const k = JSON.stringify(e.position);
      if (seenTruncates.has(k)) continue;
      seenTruncates.add(k);
    }
    out.push(e);
  }
  return out;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
