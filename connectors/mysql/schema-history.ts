import type { Kafka, Producer } from 'kafkajs';
import { readTopicToEnd } from '../../pipeline/checkpoint.js';
import { ensureTopics } from '../../pipeline/topics.js';
import { CdcError } from '../../schemas/errors.js';
import type { MysqlPosition } from '../../schemas/position.js';
import type { TableId, TableSchema } from '../../schemas/table-schema.js';
import { type TableDefinition, tableKey } from './catalog.js';
import { MariaGtidList, MysqlGtidSet, parseMariaGtid } from './gtid.js';

/**
 * The schema history (Debezium's database.history topic): every DDL the connector sees on a
 * captured table, with the table definitions that resulted, in binlog order, in a one-partition
 * topic kept forever (`<prefix>.<source>.schema-history`). Replayed on start, so the schema in
 * force at any binlog position is known even after a restart or a rewind.
 *
 * With binlog_row_metadata=FULL the TABLE_MAP events already say what each row holds (names,
 * types, signedness, charsets, enum labels, key); the history adds what the binlog does not
 * carry: the exact COLUMN_TYPE text, defaults, and MariaDB's JSON columns (LONGTEXT plus a
 * json_valid check). A history entry is only used for a row whose TABLE_MAP agrees with it.
 *
 * Writes are acknowledged by Kafka (acks=all, idempotent) before the connector publishes any
 * event after the DDL, so the history is never behind the stored checkpoint; an entry written
 * twice (crash between the DDL and the next checkpoint) is recognised by its position and kept
 * once.
 */

export interface HistoryPosition {
  file: string;
  pos: number;
  /** GTID of the DDL's event group (MariaDB d-s-n, MySQL uuid:n). */
  gtid?: string;
}

export interface HistoryRecord {
  v: 1;
  source: string;
  /** snapshot: the definitions at the start position (a group of records sharing `snapshotId`). */
  kind: 'snapshot' | 'ddl';
  position: HistoryPosition;
  ts_ms: number;
  /** Default database of the statement. */
  db: string;
  ddl: string | null;
  /** Resulting definitions; schema null = the table no longer exists. */
  tables: { id: TableId; schema: TableSchema | null; collations?: Record<string, number> }[];
  snapshotId?: string;
  /** Last record of its snapshot group. */
  last?: boolean;
}

export function historyKey(p: HistoryPosition): string {
  return p.gtid ?? `${p.file}:${p.pos}`;
}

/** Binlog file sequence number (binlog.000123 -> 123) for ordering positions without GTIDs. */
function fileSeq(file: string): number {
  const m = /\.(\d+)$/.exec(file);
  return m ? Number(m[1]) : 0;
}

/** Is the history entry at `p` at or before the checkpoint (so already in force at it)? */
export function coveredBy(p: HistoryPosition, cp: MysqlPosition, flavor: 'mariadb' | 'mysql'): boolean {
  if (p.gtid !== undefined && cp.gtidSet !== undefined) {
    if (flavor === 'mariadb') return MariaGtidList.parse(cp.gtidSet).contains(parseMariaGtid(p.gtid));
    const [uuid, gno] = p.gtid.split(':');
    return MysqlGtidSet.parse(cp.gtidSet).contains(uuid!, BigInt(gno!));
  }
  const a = fileSeq(p.file);
  const b = fileSeq(cp.file);
  return a < b || (a === b && p.pos < cp.pos);
}

/**
 * Definitions recorded for each table (`tableKey`), newest first. A definition is read from
 * information_schema when the connector reaches the DDL, which may be later than the DDL (a
 * lagging connector, DDLs in quick succession): the older entries let a column keep what it had
 * when the newest entry no longer agrees with the TABLE_MAP.
 */
export type SchemaState = Map<string, TableDefinition[]>;

/** Definitions kept per table. */
const CHAIN = 8;

export function applyRecord(state: SchemaState, r: HistoryRecord): void {
  for (const t of r.tables) {
    const k = tableKey(t.id.db, t.id.table);
    if (t.schema === null) state.delete(k);
    else state.set(k, [{ schema: t.schema, collations: t.collations ?? {} }, ...(state.get(k) ?? [])].slice(0, CHAIN));
  }
}

/** The newest definition of a table, if any. */
export function latest(state: SchemaState, key: string): TableSchema | undefined {
  return state.get(key)?.[0]?.schema;
}

export interface LoadedHistory {
  state: SchemaState;
  /** Entries past the checkpoint, applied when the stream reaches them (replay after a rewind). */
  pending: Map<string, HistoryRecord>;
  /** Number of records read. */
  count: number;
  /** Was there a complete snapshot group? (false: the topic is empty or was lost). */
  hasSnapshot: boolean;
}

/** Folds the records into the state at checkpoint `cp` (null: no checkpoint yet). */
export function foldHistory(records: HistoryRecord[], cp: MysqlPosition | null, flavor: 'mariadb' | 'mysql'): LoadedHistory {
  const state: SchemaState = new Map();
  const pending = new Map<string, HistoryRecord>();
  const groups = new Map<string, HistoryRecord[]>();
  let hasSnapshot = false;
  for (const r of records) {
    if (r.kind === 'snapshot') {
      const id = r.snapshotId ?? 'default';
      const g = [...(groups.get(id) ?? []), r];
      groups.set(id, g);
      if (r.last) {
        // A complete snapshot replaces everything known before it.
        state.clear();
        pending.clear();
        for (const s of g) applyRecord(state, s);
        groups.delete(id);
        hasSnapshot = true;
      }
      continue;
    }
    if (cp !== null && !coveredBy(r.position, cp, flavor)) pending.set(historyKey(r.position), r);
    else applyRecord(state, r);
  }
  return { state, pending, count: records.length, hasSnapshot };
}

export interface SchemaHistoryStore {
  readonly topic: string;
  load(): Promise<HistoryRecord[]>;
  append(records: HistoryRecord[]): Promise<void>;
  close(): Promise<void>;
}

/** The history topic: created with one partition and infinite retention (never compacted). */
export async function schemaHistoryStore(kafka: Kafka, topic: string, topicSpec: { replicationFactor: number }): Promise<SchemaHistoryStore> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await ensureTopics(admin, {
      [topic]: { partitions: 1, replicationFactor: topicSpec.replicationFactor, configs: { 'cleanup.policy': 'delete', 'retention.ms': '-1', 'retention.bytes': '-1' } },
    });
  } finally {
    await admin.disconnect();
  }
  let producer: Producer | null = null;
  return {
    topic,
    async load() {
      const out: HistoryRecord[] = [];
      const bad: string[] = [];
      await readTopicToEnd(kafka, topic, (m) => {
        if (m.value === null) return;
        try {
          const r = JSON.parse(m.value.toString('utf8')) as HistoryRecord;
          if (r.v === 1) out.push(r);
          else bad.push(`offset ${m.offset}: unknown record version ${String(r.v)}`);
        } catch (err) {
          bad.push(`offset ${m.offset}: ${(err as Error).message}`);
        }
      });
      // A history we cannot read fully must stop the connector: decoding on with a partial one
      // would attach wrong definitions to events.
      if (bad.length > 0) throw new CdcError(`schema history ${topic}: unreadable records (${bad.slice(0, 3).join('; ')})`, { retriable: false });
      return out;
    },
    async append(records) {
      if (records.length === 0) return;
      if (!producer) {
        producer = kafka.producer({
          idempotent: true,
          maxInFlightRequests: 1,
          allowAutoTopicCreation: false,
          // Like the publisher: an idempotent producer must not give up; the source waits for Kafka.
          retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 5_000 },
        });
        await producer.connect();
      }
      try {
        await producer.send({
          topic,
          acks: -1,
          messages: records.map((r) => ({ key: Buffer.from(r.source), value: Buffer.from(JSON.stringify(r)) })),
        });
      } catch (err) {
        throw new CdcError(`schema history ${topic}: write failed: ${(err as Error).message}`, { retriable: true, cause: err });
      }
    },
    async close() {
      await producer?.disconnect().catch(() => undefined);
      producer = null;
    },
  };
}
