// End to end with Avro: a source table under continuous writes goes through ten schema changes
// (PostgreSQL and MariaDB sources), every event is published as Avro in the Confluent wire format
// with its schema registered in the real registry, decoded by a consumer with a fresh codec and
// applied to a replica by the real sink. Then a narrowing is refused: that table stops (its events
// parked), the other table keeps flowing.
import type { Kafka } from 'kafkajs';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { type PipelineConfig, pipelineConfig } from '../../config/schema.js';
import { createMysqlSource } from '../../connectors/mysql/index.js';
import { createPostgresSource } from '../../connectors/postgres/index.js';
import { createCodec } from '../../pipeline/codec.js';
import { httpSchemaRegistry } from '../../pipeline/schema-registry.js';
import { readTopicToEnd } from '../../pipeline/checkpoint.js';
import { runSink } from '../../pipeline/sink-runner.js';
import { runSource } from '../../pipeline/source-runner.js';
import { pipelineTopics, sourceTopics } from '../../pipeline/topics.js';
import { readRowRecord, valueRecordOf } from '../../schemas/avro/derive.js';
import { createLogger } from '../../util/log.js';
import { env, testKafka, uniq, until } from '../helpers.js';
import { type TestDb, createTestDb, dropTestDb } from '../postgres/harness.js';
import { type Replica, mariaReplica, pgReplica } from '../sinks/support.js';

const REGISTRY = process.env.CDC_REGISTRY_URL ?? `http://127.0.0.1:${process.env.CDC_REGISTRY_PORT ?? 18081}/apis/ccompat/v7`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Writes between two schema changes; CDC_SOAK=1 makes it a longer stream (~1 min of writes per change). */
const STEP_MS = process.env.CDC_SOAK ? 60_000 : 400;

/** What differs between the two source kinds. */
interface SourceKind {
  kind: 'postgres' | 'mysql';
  /** Creates the database and tables `t` (evolving) and `t2` (bystander); returns the source URL. */
  setup(): Promise<{ url: string; db: string; schema: string | null }>;
  exec(sql: string): Promise<void>;
  /** The writer's own connection, so its statements really run beside the DDL. */
  write(sql: string): Promise<void>;
  /** Every row of a table as text, ordered by id. */
  rows(table: string): Promise<Record<string, string | null>[]>;
  /** Touches row 0 of both tables (insert or update): proves the stream is capturing. */
  probe: string[];
  /** Ten changes; `then` statements run after the DDL (while the writer goes on). */
  steps: { what: string; ddl: string; then?: string[] }[];
  narrow: { ddl: string; column: string };
  teardown(): Promise<void>;
}

function postgresKind(): SourceKind {
  let db: TestDb | undefined;
  let w: pg.Client | undefined;
  const q = (s: string) => `"${s}"`;
  return {
    kind: 'postgres',
    async setup() {
      db = await createTestDb('avro_evo');
      await db.q(`
        create table t (id int primary key, v int not null, qty int not null, label varchar(20), ratio real);
        create table t2 (id int primary key, v int not null);
      `);
      w = new pg.Client({ connectionString: db.url });
      await w.connect();
      return { url: db.url, db: db.name, schema: 'public' };
    },
    async exec(sql) {
      await db!.q(sql);
    },
    async write(sql) {
      await w!.query(sql);
    },
    async rows(table) {
      const cols = (await db!.q(`select attname from pg_attribute where attrelid = $1::regclass and attnum > 0 and not attisdropped order by attnum`, [table])).map((r) => r.attname!);
      return db!.q(`select ${cols.map((c) => `x.${q(c)}::text as ${q(c)}`).join(', ')} from ${q(table)} as x order by x.id`);
    },
    probe: [
      `insert into t (id, v, qty, label, ratio) values (0, 0, 0, 'probe', 0.5) on conflict (id) do update set v = t.v + 1`,
      `insert into t2 (id, v) values (0, 0) on conflict (id) do update set v = t2.v + 1`,
    ],
    steps: [
      { what: 'add nullable column', ddl: `alter table t add column note text`, then: [`update t set note = 'n' || id where id % 3 = 0`] },
      { what: 'add NOT NULL column with default', ddl: `alter table t add column status varchar(10) not null default 'new'`, then: [`update t set status = 'old' where id % 4 = 0`] },
      { what: 'int -> bigint', ddl: `alter table t alter column qty type bigint`, then: [`update t set qty = 1099511627776 + id where id % 2 = 0`] },
      { what: 'varchar(20) -> varchar(80)', ddl: `alter table t alter column label type varchar(80)`, then: [`update t set label = repeat('x', 60) || id where id % 5 = 0`] },
      { what: 'real -> double precision', ddl: `alter table t alter column ratio type double precision`, then: [`update t set ratio = 0.1 + id where id % 2 = 1`] },
      { what: 'drop NOT NULL', ddl: `alter table t alter column qty drop not null`, then: [`update t set qty = null where id % 7 = 0`] },
      { what: 'drop column', ddl: `alter table t drop column note` },
      { what: 'rename (drop + add)', ddl: `alter table t rename column status to state`, then: [`update t set v = v + 1`] },
      { what: 'set NOT NULL', ddl: `alter table t alter column label set not null` },
      { what: 'add numeric column with default', ddl: `alter table t add column amount numeric(12,2) default 0`, then: [`update t set amount = id * 1.25 where id % 3 = 1`] },
    ],
    narrow: { ddl: `update t set label = left(label, 10); alter table t alter column label type varchar(10)`, column: 'label' },
    async teardown() {
      await w?.end().catch(() => undefined);
      await dropTestDb(db);
    },
  };
}

function mariaKind(): SourceKind {
  let conn: mysql.Connection | undefined;
  let w: mysql.Connection | undefined;
  let name = '';
  const q = (s: string) => `\`${s}\``;
  return {
    kind: 'mysql',
    async setup() {
      name = uniq('avro_evo');
      conn = await mysql.createConnection({ uri: env.mariaSource, multipleStatements: true, dateStrings: true, supportBigNumbers: true, bigNumberStrings: true });
      await conn.query(`create database ${q(name)}; use ${q(name)};
        create table t (id int primary key, v int not null, qty int not null, label varchar(20), ratio float);
        create table t2 (id int primary key, v int not null);`);
      w = await mysql.createConnection({ uri: env.mariaSource, database: name });
      return { url: env.mariaSource, db: name, schema: null };
    },
    async exec(sql) {
      await conn!.query(sql);
    },
    async write(sql) {
      await w!.query(sql);
    },
    async rows(table) {
      const [cols] = await conn!.query(`select column_name as n from information_schema.columns where table_schema = ? and table_name = ? order by ordinal_position`, [name, table]);
      const names = (cols as { n: string }[]).map((c) => c.n);
      const [rows] = await conn!.query(`select ${names.map((c) => `cast(x.${q(c)} as char) as ${q(c)}`).join(', ')} from ${q(name)}.${q(table)} as x order by x.id`);
      return rows as Record<string, string | null>[];
    },
    probe: [
      `insert into t (id, v, qty, label, ratio) values (0, 0, 0, 'probe', 0.5) on duplicate key update v = v + 1`,
      `insert into t2 (id, v) values (0, 0) on duplicate key update v = v + 1`,
    ],
    steps: [
      { what: 'add nullable column', ddl: `alter table t add column note text`, then: [`update t set note = concat('n', id) where id % 3 = 0`] },
      { what: 'add NOT NULL column with default', ddl: `alter table t add column status varchar(10) not null default 'new'`, then: [`update t set status = 'old' where id % 4 = 0`] },
      { what: 'int -> bigint', ddl: `alter table t modify qty bigint not null`, then: [`update t set qty = 1099511627776 + id where id % 2 = 0`] },
      { what: 'varchar(20) -> varchar(80)', ddl: `alter table t modify label varchar(80)`, then: [`update t set label = concat(repeat('x', 60), id) where id % 5 = 0`] },
      { what: 'float -> double', ddl: `alter table t modify ratio double`, then: [`update t set ratio = 0.1 + id where id % 2 = 1`] },
      { what: 'drop NOT NULL', ddl: `alter table t modify qty bigint null`, then: [`update t set qty = null where id % 7 = 0`] },
      { what: 'drop column', ddl: `alter table t drop column note` },
      { what: 'rename (drop + add)', ddl: `alter table t rename column status to state`, then: [`update t set v = v + 1`] },
      { what: 'set NOT NULL', ddl: `alter table t modify label varchar(80) not null` },
      { what: 'add decimal column with default', ddl: `alter table t add column amount decimal(12,2) default 0`, then: [`update t set amount = id * 1.25 where id % 3 = 1`] },
    ],
    narrow: { ddl: `update t set label = left(label, 10); alter table t modify label varchar(10) not null`, column: 'label' },
    async teardown() {
      await w?.end().catch(() => undefined);
      if (conn) {
        await conn.query(`drop database if exists ${q(name)}`).catch(() => undefined);
        await conn.end();
      }
    },
  };
}

/** Inserts and updates into both tables until stopped; only columns every version has. */
function writer(src: SourceKind) {
  let stop = false;
  let paused = false;
  let nextId = 1;
  let errors = 0;
  const done = (async () => {
    while (!stop) {
      if (paused) {
        await sleep(20);
        continue;
      }
      const id = nextId++;
      try {
        await src.write(`insert into t (id, v, qty, label, ratio) values (${id}, 0, ${id}, 'l${id}', 0.5)`);
        await src.write(`insert into t2 (id, v) values (${id}, 0)`);
        if (id > 3) {
          const old = 1 + ((id * 7) % (id - 1));
          await src.write(`update t set v = v + 1 where id = ${old}`);
          await src.write(`update t2 set v = v + 1 where id = ${old}`);
        }
        if (id % 10 === 0) await src.write(`delete from t2 where id = ${id - 5}`);
      } catch {
        // A statement that raced a DDL lock timeout: the next id goes on.
        errors++;
      }
      await sleep(15);
    }
  })();
  return {
    async pause() {
      paused = true;
      await sleep(60);
    },
    resume() {
      paused = false;
    },
    async stop() {
      stop = true;
      await done;
    },
    get rows() {
      return nextId - 1;
    },
    get errors() {
      return errors;
    },
  };
}

async function topicsExist(kafka: Kafka, topics: string[]): Promise<boolean> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const have = new Set(await admin.listTopics());
    return topics.every((t) => have.has(t));
  } finally {
    await admin.disconnect();
  }
}

describe.each([['postgres', postgresKind], ['mysql', mariaKind]] as const)('Avro schema evolution end to end, %s source', (kind, makeKind) => {
  const src = makeKind();
  let replica: Replica | undefined;
  const cleanups: (() => Promise<unknown>)[] = [];

  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await replica?.drop().catch(() => undefined);
    await src.teardown();
  });

  it('carries ten schema changes under continuous writes to the replica, then refuses a narrowing for that table only', async () => {
    const kafka = testKafka();
    const registry = httpSchemaRegistry({ url: REGISTRY });
    const where = await src.setup();
    const name = uniq('avroe2e');
    replica = kind === 'postgres' ? await pgReplica() : await mariaReplica();
    if (kind === 'mysql') replica.track(where.db);
    // The MariaDB run applies whole source transactions (transaction mode): the END records must
    // not count events that were parked, or the sink would wait for them forever.
    const mode = kind === 'postgres' ? 'key' : 'transaction';
    const cfg = pipelineConfig.parse({
      name,
      kafka: { brokers: env.kafka.split(','), partitions: 2, encoding: 'avro', schemaRegistry: { url: REGISTRY } },
      sources: [
        kind === 'postgres'
          ? { name: 'src', url: where.url, postgres: { slot: where.db, publication: where.db, heartbeatIntervalMs: 0 } }
          : { name: 'src', url: where.url, tables: { include: [`${where.db}.*`] }, mysql: { serverId: 20_000 + Math.floor(Math.random() * 10_000) } },
      ],
      // Own sink name and group: the default group `cdc-sink-<pipeline>-<sink>` would be shared by runs of one pipeline name.
      sinks: [{ name: uniq('replica'), group: uniq('avro-e2e'), url: replica.url, mode, dropColumns: 'drop', topicRefreshIntervalMs: 500 }],
      log: { level: 'error' },
    });
    const source = cfg.sources[0]!;
    const topics = sourceTopics(name, 'src');
    const topicT = topics.table({ db: where.db, schema: where.schema, table: 't' });
    const topicT2 = topics.table({ db: where.db, schema: where.schema, table: 't2' });

    const ac = new AbortController();
    const connector = kind === 'postgres' ? createPostgresSource(source, cfg) : createMysqlSource(source, cfg);
    const running = runSource({ cfg, source, connector, kafka, codec: createCodec(cfg, kafka), log: createLogger('error'), signal: ac.signal });
    let sourceFailure: unknown;
    running.catch((err: unknown) => (sourceFailure = err));
    cleanups.push(async () => {
      ac.abort(new Error('test done'));
      await running.catch(() => undefined);
    });

    // The stream starts at the source's current end: write only once it captures (a row the
    // connector did not see would never reach the replica: there is no snapshot here).
    await until('the source to capture', async () => {
      for (const sql of src.probe) await src.exec(sql);
      return topicsExist(kafka, [topicT, topicT2]);
    });
    const w = writer(src);
    cleanups.push(() => w.stop());
    // The real sink runner, with its own codec instance (a consumer process knows only the registry).
    const sinkAc = new AbortController();
    const sinkRun = runSink({ cfg, sink: cfg.sinks[0]!, kafka, codec: createCodec(cfg, kafka), log: createLogger(process.env.CDC_LOG_LEVEL ?? 'error'), signal: sinkAc.signal, sessionTimeoutMs: 6000 });
    let sinkFailure: unknown;
    sinkRun.catch((err: unknown) => (sinkFailure = err));
    cleanups.push(async () => {
      sinkAc.abort(new Error('test done'));
      await sinkRun.catch(() => undefined);
    });
    const deadLetters = async () => {
      let n = 0;
      await readTopicToEnd(kafka, pipelineTopics(name).deadLetter(cfg.sinks[0]!.name), () => {
        n++;
      }, { idleMs: 500 });
      return n;
    };

    // Ten changes while the writer goes on.
    for (const step of src.steps) {
      await sleep(STEP_MS);
      await src.exec(step.ddl);
      for (const s of step.then ?? []) await src.exec(s);
    }
    await sleep(STEP_MS);

    // Quiesce and compare every row and every column the source has.
    await w.pause();
    const replicaRows = (table: string) => replica!.rows(kind === 'postgres' ? 'public' : where.db, table, ['id']);
    const same = async (table: string) => {
      try {
        const want = await src.rows(table);
        const got = await replicaRows(table);
        if (got.length !== want.length) return false;
        return want.every((r, i) => Object.entries(r).every(([c, v]) => (got[i]![c] ?? null) === v));
      } catch {
        return false; // the sink altered the table between our two catalog reads
      }
    };
    await until('replica t to match the source', () => same('t'), 45_000).catch(async (err: unknown) => {
      const want = await src.rows('t');
      const got = await replicaRows('t');
      const firstDiff = want.findIndex((r, i) => JSON.stringify(r) !== JSON.stringify(Object.fromEntries(Object.keys(r).map((k) => [k, got[i]?.[k] ?? null]))));
      const byColumn = new Map<string, number>();
      want.forEach((r, i) => Object.entries(r).forEach(([c, v]) => (got[i]?.[c] ?? null) !== v && byColumn.set(c, (byColumn.get(c) ?? 0) + 1)));
      const columns = [...byColumn].map(([c, n]) => `${c} (${n} rows)`).join(', ');
      throw new Error(`${(err as Error).message}: source ${want.length} rows, replica ${got.length}; columns that differ: ${columns}; first difference at ${firstDiff}: source ${JSON.stringify(want[firstDiff])} replica ${JSON.stringify(got[firstDiff])}; sink failure: ${String(sinkFailure)}; source failure: ${String(sourceFailure)}`);
    });
    const project = (rows: Record<string, string | null>[], cols: string[]) => rows.map((r) => Object.fromEntries(cols.map((c) => [c, r[c] ?? null])));
    const tCols = Object.keys((await src.rows('t'))[0]!);
    expect(project(await replicaRows('t'), tCols)).toEqual(await src.rows('t'));
    expect(w.rows).toBeGreaterThan(20);

    // The registry holds a version per table shape: the first and one per change.
    const versions = await registry.versions(`${topicT}-value`);
    expect(versions).toHaveLength(src.steps.length + 1);
    const latest = await registry.latest(`${topicT}-value`);
    const latestSchema = readRowRecord(valueRecordOf(JSON.parse(latest!.schema))!)!.schema;
    const sourceColumns = Object.keys((await src.rows('t'))[0]!);
    expect(latestSchema.columns.map((c) => c.name)).toEqual(sourceColumns);
    expect(latestSchema.columns.find((c) => c.name === 'qty')!.type).toEqual({ kind: 'int', bits: 64 });
    expect(sinkFailure).toBeUndefined();
    expect(sourceFailure).toBeUndefined();

    // A narrowing: refused for t (its events parked with the reason), t2 keeps flowing.
    w.resume();
    await sleep(300);
    await src.exec(src.narrow.ddl);
    const before = w.rows;
    await until('writes after the narrowing', async () => w.rows > before + 20);
    await w.stop();
    await until('replica t2 to match the source', () => same('t2'), 60_000).catch(async (err: unknown) => {
      const want = await src.rows('t2');
      const got = await replicaRows('t2');
      const gotIds = new Set(got.map((r) => r.id));
      const wantIds = new Set(want.map((r) => r.id));
      const missing = want.filter((r) => !gotIds.has(r.id)).map((r) => r.id);
      const extra = got.filter((r) => !wantIds.has(r.id)).map((r) => r.id);
      const differ = want.filter((r) => gotIds.has(r.id) && JSON.stringify(r) !== JSON.stringify(got.find((g) => g.id === r.id))).map((r) => `${JSON.stringify(r)} vs ${JSON.stringify(got.find((g) => g.id === r.id))}`);
      const inTopic = await topicIds(kafka, cfg, topicT2);
      throw new Error(
        `${(err as Error).message}: topic t2 events for missing ids: ${JSON.stringify(missing.map((id) => [id, inTopic.get(String(id))]))}; source ${want.length} rows, replica ${got.length}; missing ${missing.join(',')}; extra ${extra.join(',')}; differ ${differ.slice(0, 3).join('; ')}; source failure: ${String(sourceFailure)}; sink failure: ${String(sinkFailure)}`,
      );
    });
    expect(await replicaRows('t2')).toEqual(await src.rows('t2'));
    const replicaTCols = Object.keys((await replicaRows('t'))[0]!);
    const parked = await readParked(kafka, `${topics.prefix}.parked`);
    expect(parked.length).toBeGreaterThan(0);
    expect(parked[0]!.reason).toMatch(new RegExp(`column "${src.narrow.column}" .*string length narrowed`));
    expect(parked[0]!.topic).toBe(topicT);
    expect(await registry.versions(`${topicT}-value`)).toHaveLength(src.steps.length + 1);
    // Every write to t after the refusal is in the parked topic, none was lost.
    const parkedIds = new Set(parked.map((p) => p.id));
    const replicaIds = new Set((await replicaRows('t')).map((r) => r.id));
    for (const r of await src.rows('t')) expect(replicaIds.has(r.id!) || parkedIds.has(r.id!), `row ${r.id}`).toBe(true);
    expect(sinkFailure).toBeUndefined();
    expect(sourceFailure).toBeUndefined();
    expect(await deadLetters()).toBe(0);
    // dropColumns: drop: the replica has the source's columns, no more (the dropped `note`, the
    // renamed `status` are gone).
    expect(replicaTCols).toEqual(tCols);
  }, process.env.CDC_SOAK ? 30 * 60_000 : 180_000);
});

async function readParked(kafka: Kafka, topic: string): Promise<{ id: string; reason: string; topic: string }[]> {
  const consumer = kafka.consumer({ groupId: uniq('parked'), allowAutoTopicCreation: false, maxWaitTimeInMs: 200 });
  const out: { id: string; reason: string; topic: string }[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    let last = Date.now();
    await consumer.run({
      eachMessage: async ({ message }) => {
        last = Date.now();
        const env = JSON.parse(message.value!.toString()) as { after: { id: number | string } | null; before: { id: number | string } | null };
        out.push({ id: String((env.after ?? env.before)!.id), reason: String(message.headers!['cdc.parked.reason']), topic: String(message.headers!['cdc.parked.topic']) });
      },
    });
    await until('parked topic to go quiet', async () => out.length > 0 && Date.now() - last > 1500, 30_000);
  } finally {
    await consumer.disconnect();
  }
  return out;
}

/** Ops per row id in a table topic (diagnostics). */
async function topicIds(kafka: Kafka, cfg: PipelineConfig, topic: string): Promise<Map<string, string[]>> {
  const codec = createCodec(cfg, kafka);
  const consumer = kafka.consumer({ groupId: uniq('diag'), allowAutoTopicCreation: false, maxWaitTimeInMs: 200 });
  const out = new Map<string, string[]>();
  let last = Date.now();
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message, partition }) => {
        last = Date.now();
        if (message.value === null) return;
        const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]));
        const e = (await codec.decodeChange({ key: message.key, value: message.value, headers }))!;
        const id = String((e.after ?? e.before)!.id);
        out.set(id, [...(out.get(id) ?? []), `${e.op}@p${partition}/${message.offset}`]);
      },
    });
    await until('diag topic quiet', async () => Date.now() - last > 2000, 30_000);
  } finally {
    await consumer.disconnect();
    await codec.close?.();
  }
  return out;
}
