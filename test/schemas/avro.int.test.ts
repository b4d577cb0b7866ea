// Avro codec against the real registry (Apicurio, Confluent-compatible API) and the real Kafka:
// publish through pipeline/publisher.ts, read back with our codec and with a decoder we did not
// write (@kafkajs/confluent-schema-registry's own decode).
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { cacheRoot } from '../../infra/env.js';
import { APICURIO_VERSION } from '../../infra/registry.js';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SourceRecord } from '../../connectors/source.js';
import { pipelineConfig } from '../../config/schema.js';
import { replayParked } from '../../pipeline/parked.js';
import { createPublisher, type Publisher } from '../../pipeline/publisher.js';
import { httpSchemaRegistry } from '../../pipeline/schema-registry.js';
import { sourceTopics } from '../../pipeline/topics.js';
import { type AvroCodec, avroCodec } from '../../schemas/avro/codec.js';
import { deriveSchemas } from '../../schemas/avro/derive.js';
import { bigintLong } from '../../schemas/avro/long.js';
import type { ChangeEvent } from '../../schemas/change-event.js';
import type { ColumnType, Row } from '../../schemas/column-types.js';
import type { EncodedRecord } from '../../schemas/codec/types.js';
import type { TableSchema } from '../../schemas/table-schema.js';
import { createLogger } from '../../util/log.js';
import { consumeN, env, testKafka, uniq } from '../helpers.js';
import { changeEvent, keyOnly, mysqlAllTypes, mysqlRows, pgAllTypes, pgRows } from './fixtures.js';

const REGISTRY_KAFKA = env.kafka.split(',')[0]!;
const REGISTRY = process.env.CDC_REGISTRY_URL ?? `http://127.0.0.1:${process.env.CDC_REGISTRY_PORT ?? 18081}/apis/ccompat/v7`;

let kafka: Kafka;
let prefix: string;
let codec: AvroCodec;
const publishers: Publisher[] = [];
const registry = httpSchemaRegistry({ url: REGISTRY });

function makeCodec(): AvroCodec {
  return avroCodec({
    registry,
    topicOf: (e) => sourceTopics(prefix, e.source.name).table(e.schema.id),
    transactionTopicOf: (t) => sourceTopics(prefix, t.source).transaction,
  });
}

async function publisher(source: string, c: AvroCodec = codec): Promise<Publisher> {
  const p = await createPublisher({ kafka, codec: c, topics: sourceTopics(prefix, source), sourceName: source, topicSpec: { partitions: 1, replicationFactor: 1 } });
  publishers.push(p);
  return p;
}

const changes = (events: ChangeEvent[]): SourceRecord[] => events.map((event) => ({ type: 'change', event }));
/** The event as published by source `name` (its topic and subject follow the source name). */
const from = (name: string, e: ChangeEvent): ChangeEvent => ({ ...e, source: { ...e.source, name } });
const asRecord = (m: { key: Buffer | null; value: Buffer | null; headers?: Record<string, unknown> }): EncodedRecord => ({
  key: m.key,
  value: m.value,
  headers: Object.fromEntries(Object.entries(m.headers ?? {}).map(([k, v]) => [k, String(v)])),
});

beforeAll(async () => {
  kafka = testKafka();
  prefix = uniq('avro');
  codec = makeCodec();
});

afterAll(async () => {
  await Promise.all(publishers.map((p) => p.close()));
});

// ---------------------------------------------------------------- a decoder we did not write

/**
 * Avro values as the Avro spec defines their logical types, written independently of
 * schemas/avro (JS Date for calendar maths, string slicing for decimals).
 */
function interpret(a: unknown, t: ColumnType, dialect: 'postgres' | 'mysql'): unknown {
  if (a === null) return null;
  switch (t.kind) {
    case 'int':
      if (t.bits === 64 && t.unsigned) return decimalText(a as Buffer, 0);
      if (t.bits === 64) return (a as bigint).toString();
      return typeof a === 'bigint' ? Number(a) : a;
    case 'float': {
      const f = a as number;
      if (Number.isNaN(f)) return 'NaN';
      if (!Number.isFinite(f)) return f > 0 ? 'Infinity' : '-Infinity';
      return t.bits === 32 ? Math.fround(f) : f;
    }
    case 'decimal':
      return t.precision === undefined ? a : decimalText(a as Buffer, t.scale ?? 0);
    case 'bytes':
      return (a as Buffer).toString('base64');
    case 'date': {
      // days since 1970-01-01, proleptic Gregorian; printed the way PostgreSQL prints BC years.
      const d = new Date((a as number) * 86_400_000);
      const y = d.getUTCFullYear();
      const md = `${String(d.getUTCMonth() + 1).padStart(2, '0')}-${String(d.getUTCDate()).padStart(2, '0')}`;
      return y > 0 ? `${String(y).padStart(4, '0')}-${md}` : `${String(1 - y).padStart(4, '0')}-${md} BC`;
    }
    case 'time': {
      if (t.tz) return a;
      // time-micros: microseconds after midnight (MySQL TIME: a signed duration up to 838 h).
      const signed = Number(a as bigint);
      const us = Math.abs(signed);
      const two = (n: number) => String(n).padStart(2, '0');
      const secs = Math.floor(us / 1e6);
      const hms = `${signed < 0 ? '-' : ''}${two(Math.floor(secs / 3600))}:${two(Math.floor(secs / 60) % 60)}:${two(secs % 60)}`;
      const frac = String(us % 1_000_000).padStart(6, '0');
      return dialect === 'mysql' ? `${hms}${t.precision ? `.${frac.slice(0, t.precision)}` : ''}` : `${hms}${us % 1_000_000 ? `.${frac.replace(/0+$/, '')}` : ''}`;
    }
    case 'timestamp': {
      const us = a as bigint;
      const ms = us >= 0n ? us / 1000n : (us - 999n) / 1000n; // floor, not truncation, before 1970
      const iso = new Date(Number(ms)).toISOString().slice(0, 19);
      const frac = String(Number(((us % 1_000_000n) + 1_000_000n) % 1_000_000n)).padStart(6, '0');
      const f = dialect === 'mysql' ? (t.precision ? `.${frac.slice(0, t.precision)}` : '') : frac === '000000' ? '' : `.${frac.replace(/0+$/, '')}`;
      return `${iso}${f}${t.tz ? 'Z' : ''}`;
    }
    case 'array':
      return (a as unknown[]).map((e) => interpret(e, t.element, dialect));
    default:
      return a;
  }
}

function decimalText(buf: Buffer, scale: number): string {
  let n = BigInt(`0x${buf.toString('hex') || '0'}`);
  if (buf.length > 0 && buf[0]! >= 0x80) n -= 2n ** BigInt(8 * buf.length);
  const neg = n < 0n;
  const digits = (neg ? -n : n).toString().padStart(scale + 1, '0');
  const text = scale > 0 ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits;
  return neg ? `-${text}` : text;
}

function expectRowMatches(decoded: Record<string, unknown>, row: Row, schema: TableSchema): void {
  const fields = Object.keys(decoded).filter((f) => f !== '__cdc');
  expect(fields).toHaveLength(schema.columns.length);
  schema.columns.forEach((c, i) => {
    const a = decoded[fields[i]!];
    const raw = (decoded.__cdc as { raw: Record<string, string> } | null)?.raw[fields[i]!];
    const expected = row[c.name];
    if (raw !== undefined) {
      // Values the Avro type cannot hold exactly: the field is null or an approximation, the
      // exact canonical value is in __cdc.raw.
      expect(JSON.parse(raw), c.name).toEqual(expected);
    } else if (c.type.kind === 'float' && c.type.bits === 32 && typeof expected === 'number') {
      expect(interpret(a, c.type, schema.dialect), c.name).toBe(Math.fround(expected));
    } else {
      expect(interpret(a, c.type, schema.dialect), c.name).toEqual(expected);
    }
  });
}

// ---------------------------------------------------------------- Apache Avro (Java)

const JAVA_LIB = join(cacheRoot(), `apicurio-registry-${APICURIO_VERSION}`, 'lib');

/** Decodes framed values with test/schemas/java/AvroDecode.java (Apache Avro 1.12, the registry's own jars). */
async function javaDecode(values: Buffer[]): Promise<{ id: number; op: string; after: Record<string, unknown> | null }[]> {
  const child = spawn(process.env.CDC_JAVA ?? 'java', ['-cp', `${JAVA_LIB}/*`, join(import.meta.dirname, 'java', 'AvroDecode.java'), REGISTRY], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.end(values.map((v) => v.toString('base64')).join('\n'));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`AvroDecode.java failed (${code}): ${err.slice(0, 2000)}`);
  return out.trim().split('\n').map((l) => JSON.parse(l) as { id: number; op: string; after: Record<string, unknown> | null });
}

/** Java's text renderings mapped to our canonical forms, written independently of schemas/avro. */
function fromJava(text: unknown, t: ColumnType): unknown {
  if (text === null) return null;
  const s = String(text);
  switch (t.kind) {
    case 'bool':
      return s === 'true';
    case 'int':
      return t.bits === 64 ? s : Number(s);
    case 'year':
      return Number(s);
    case 'float':
      // JDK 17's Float.toString is not always the shortest text (1.4E-45): compare as float32.
      if (s === 'NaN' || s === 'Infinity' || s === '-Infinity') return s;
      return t.bits === 32 ? Math.fround(Number(s)) : Number(s);
    case 'uuid':
      return s.toLowerCase();
    case 'date': {
      // ISO-8601 astronomical years ('-0043' = 44 BC, '+12345') -> PostgreSQL's printing.
      const m = /^([+-]?)(\d+)-(\d{2})-(\d{2})$/.exec(s)!;
      const y = Number(`${m[1]}${m[2]}`);
      return y > 0 ? `${String(y).padStart(4, '0')}-${m[3]}-${m[4]}` : `${String(1 - y).padStart(4, '0')}-${m[3]}-${m[4]} BC`;
    }
    case 'time':
      return t.tz ? s : micros(`1970-01-01T${s}`);
    case 'timestamp':
      return micros(s.endsWith('Z') ? s.slice(0, -1) : s);
    case 'array': // nested lists for multi-dimensional arrays
      return (text as unknown[]).map((e) => fromJava(e, Array.isArray(e) ? t : t.element));
    default:
      return s;
  }
}

/** Microseconds of an ISO local date-time with optional seconds and 0-9 fraction digits. */
function micros(iso: string): number {
  const m = /^(.*T\d{2}:\d{2})(?::(\d{2}))?(?:\.(\d+))?$/.exec(iso)!;
  return Date.parse(`${m[1]}:${m[2] ?? '00'}Z`) * 1000 + Number((m[3] ?? '').padEnd(6, '0').slice(0, 6));
}

function canonicalFor(v: unknown, t: ColumnType): unknown {
  if (v === null) return null;
  if (t.kind === 'uuid') return String(v).toLowerCase();
  if (t.kind === 'float' && t.bits === 32 && typeof v === 'number') return Math.fround(v);
  if (t.kind === 'time' && !t.tz) return micros(`1970-01-01T${String(v)}`);
  if (t.kind === 'timestamp') return micros(String(v).replace(/Z$/, ''));
  if (t.kind === 'array') return (v as unknown[]).map((e) => canonicalFor(e, Array.isArray(e) ? t : t.element));
  return v;
}

function expectJavaRowMatches(decoded: Record<string, unknown>, row: Row, schema: TableSchema): void {
  const fields = Object.keys(decoded).filter((f) => f !== '__cdc');
  const raw = (decoded.__cdc as { raw: Record<string, string> } | null)?.raw ?? {};
  schema.columns.forEach((c, i) => {
    const f = fields[i]!;
    if (raw[f] !== undefined) expect(JSON.parse(raw[f]!), c.name).toEqual(row[c.name]);
    else expect(fromJava(decoded[f] ?? null, c.type), c.name).toEqual(canonicalFor(row[c.name] ?? null, c.type));
  });
}

describe('Avro topics through Kafka and the real registry', () => {
  it('read back value for value with our codec, the registry client’s own decode and Apache Avro (Java)', async () => {
    const pgEvents = [
      ...pgRows.map((r) => changeEvent(pgAllTypes, 'c', null, r)),
      changeEvent(pgAllTypes, 'u', keyOnly(pgAllTypes, pgRows[0]!), pgRows[0]!),
      changeEvent(pgAllTypes, 'd', keyOnly(pgAllTypes, pgRows[1]!), null),
    ];
    const myEvents = mysqlRows.map((r) => changeEvent(mysqlAllTypes, 'c', null, r));
    await (await publisher('pg1')).publish({ records: changes(pgEvents), checkpoint: null });
    await (await publisher('my1')).publish({ records: changes(myEvents), checkpoint: null });

    // +1: the delete's tombstone.
    const pgTopic = sourceTopics(prefix, 'pg1').table(pgAllTypes.id);
    const myTopic = sourceTopics(prefix, 'my1').table(mysqlAllTypes.id);
    const pgMsgs = await consumeN(kafka, pgTopic, pgEvents.length + 1);
    const myMsgs = await consumeN(kafka, myTopic, myEvents.length);

    // Our decoder, a fresh instance that knows nothing but the registry URL.
    const reader = makeCodec();
    const ours = await Promise.all([...pgMsgs, ...myMsgs].map((m) => reader.decodeChange(asRecord(m))));
    expect(ours.filter((e) => e !== null)).toEqual([...pgEvents, ...myEvents]);
    expect(ours[pgEvents.length]).toBeNull(); // the tombstone

    // The registry client's decoder. Its only option: a BigInt long, which any consumer of
    // 64-bit ids needs (stock avsc refuses longs beyond 2^53).
    const longHook = (schema: unknown) => ((schema as { type?: unknown })?.type === 'long' ? bigintLong : undefined);
    const sr = new SchemaRegistry({ host: REGISTRY }, { [SchemaType.AVRO]: { typeHook: longHook } } as never);
    const theirs = await Promise.all(myMsgs.map((m) => sr.decode(m.value!)));
    const theirsPg = await Promise.all(pgMsgs.filter((m) => m.value !== null).map((m) => sr.decode(m.value!)));
    theirsPg.forEach((env, i) => {
      const e = pgEvents[i]!;
      expect(env.op).toBe(e.op);
      expect(env.source.lsn).toBe(e.source.lsn);
      if (e.after) expectRowMatches(env.after, e.after, pgAllTypes);
    });
    theirs.forEach((env, i) => expectRowMatches(env.after, myEvents[i]!.after!, mysqlAllTypes));
    // Keys too: the composite MySQL key.
    const key = await sr.decode(myMsgs[0]!.key!);
    expect(decimalText(key.id as Buffer, 0)).toBe(mysqlRows[0]!.id);
    expect(key.code).toBe(mysqlRows[0]!.code);
    // Apache Avro's Java implementation (what Kafka Connect, ksqlDB, Flink use) with its standard
    // logical-type conversions reads the same records, value for value.
    const java = await javaDecode([...pgMsgs, ...myMsgs].filter((m) => m.value !== null).map((m) => m.value!));
    const withAfter = [...pgEvents, ...myEvents].filter((e) => e.after !== null);
    const javaAfter = java.filter((j) => j.after !== null);
    expect(javaAfter).toHaveLength(withAfter.length);
    withAfter.forEach((e, i) => expectJavaRowMatches(javaAfter[i]!.after!, e.after!, e.schema));
    // Source column types travel in the schema metadata.
    const text = await registry.schemaById(pgMsgs[0]!.value!.readUInt32BE(1));
    expect(text).toContain('"sourceType":"numeric(12,2)"');
  });
});

// ---------------------------------------------------------------- evolution on the real registry

const base: TableSchema = {
  id: { db: 'app', schema: 'public', table: 'evolving' },
  dialect: 'postgres',
  primaryKey: ['id'],
  columns: [
    { name: 'id', type: { kind: 'int', bits: 32 }, nullable: false, sourceType: 'integer' },
    { name: 'qty', type: { kind: 'int', bits: 32 }, nullable: false, sourceType: 'integer' },
    { name: 'label', type: { kind: 'string', length: 20 }, nullable: true, sourceType: 'character varying(20)' },
    { name: 'ratio', type: { kind: 'float', bits: 32 }, nullable: true, sourceType: 'real' },
  ],
};

type Cols = TableSchema['columns'];
const step = (prev: TableSchema, f: (c: Cols) => Cols): TableSchema => ({ ...prev, columns: f(structuredClone(prev.columns)) });
const set = (name: string, patch: Partial<Cols[number]>) => (c: Cols) => c.map((x) => (x.name === name ? { ...x, ...patch } : x));

/** Eight-plus changes of the issue, each a new table version. */
function versions(): TableSchema[] {
  const v: TableSchema[] = [base];
  const add = (f: (c: Cols) => Cols) => v.push(step(v.at(-1)!, f));
  add((c) => [...c, { name: 'note', type: { kind: 'string' }, nullable: true, sourceType: 'text' }]); // add nullable column
  add((c) => [...c, { name: 'status', type: { kind: 'string', length: 10 }, nullable: false, sourceType: 'character varying(10)', defaultExpr: "'new'::character varying" }]); // add with default
  add(set('qty', { type: { kind: 'int', bits: 64 }, sourceType: 'bigint' })); // int -> bigint
  add(set('label', { type: { kind: 'string', length: 80 }, sourceType: 'character varying(80)' })); // varchar widened
  add(set('ratio', { type: { kind: 'float', bits: 64 }, sourceType: 'double precision' })); // float -> double
  add(set('qty', { nullable: true })); // drop NOT NULL
  add((c) => c.filter((x) => x.name !== 'note')); // drop column
  add((c) => c.map((x) => (x.name === 'status' ? { ...x, name: 'state' } : x))); // rename = drop + add
  add(set('state', { nullable: true })); // nullability again
  return v;
}

function rowFor(s: TableSchema, i: number): Row {
  const row: Row = {};
  for (const c of s.columns) {
    const t = c.type;
    row[c.name] =
      c.name === 'id' ? i : t.kind === 'int' ? (t.bits === 64 ? String(2 ** 53 + i) : i * 10) : t.kind === 'float' ? (t.bits === 32 ? 0.5 : 0.1 + i) : `${c.name}-${i}`;
  }
  return row;
}

describe('schema evolution against the real registry', () => {
  it('registers every widening as a new version; old and new events decode; a narrowing is refused naming column and rule', async () => {
    const topicEvents: ChangeEvent[] = [];
    const vs = versions();
    const p = await publisher('evo');
    let i = 0;
    for (const s of vs) {
      const batch = [0, 1, 2].map(() => from('evo', changeEvent(s, 'c', null, rowFor(s, ++i))));
      await p.publish({ records: changes(batch), checkpoint: null });
      topicEvents.push(...batch);
    }
    const topic = sourceTopics(prefix, 'evo').table(base.id);
    expect(await registry.versions(`${topic}-value`)).toHaveLength(vs.length);
    expect(await registry.getCompatibility(`${topic}-value`)).toBe('BACKWARD');

    const msgs = await consumeN(kafka, topic, topicEvents.length);
    const reader = makeCodec();
    const decoded = await Promise.all(msgs.map((m) => reader.decodeChange(asRecord(m))));
    expect(decoded).toEqual(topicEvents);

    // Narrowing: varchar(80) -> varchar(10). Refused before anything is published.
    const narrowed = step(vs.at(-1)!, set('label', { type: { kind: 'string', length: 10 }, sourceType: 'character varying(10)' }));
    const err = (await codec.encodeChange(from('evo', changeEvent(narrowed, 'c', null, rowFor(narrowed, 99)))).catch((e: unknown) => e)) as Error;
    expect(err.name).toBe('SchemaIncompatibleError');
    expect(err.message).toContain('app.public.evolving');
    expect(err.message).toContain('column "label" character varying(80) -> character varying(10)');
    expect(err.message).toContain('string length narrowed');
    expect(await registry.versions(`${topic}-value`)).toHaveLength(vs.length);

    // A restarted source replays from its checkpoint: events of the first version get its id back
    // (lookup), no new version and no refusal although the subject has moved on since.
    const replay = await makeCodec().encodeChange(structuredClone(topicEvents[0]!));
    expect(replay.value!.readUInt32BE(1)).toBe(msgs[0]!.value!.readUInt32BE(1));
    expect(await registry.versions(`${topic}-value`)).toHaveLength(vs.length);
  });

  it('the registry itself refuses what Avro cannot resolve (bigint -> integer)', async () => {
    const s1 = step(base, set('qty', { type: { kind: 'int', bits: 64 }, sourceType: 'bigint' }));
    const c = makeCodec();
    await c.encodeChange(changeEvent(s1, 'c', null, rowFor(s1, 1)));
    const topic = sourceTopics(prefix, 'pg1').table(base.id);
    // Ask the registry directly with the narrowed schema (our own rules not involved).
    const narrowed = JSON.stringify(deriveSchemas(base, topic).value);
    expect((await registry.testCompatibility(`${topic}-value`, narrowed)).compatible).toBe(false);
    const widened = JSON.stringify(deriveSchemas(step(s1, (cols) => [...cols, { name: 'n', type: { kind: 'bool' }, nullable: false, sourceType: 'boolean' }]), topic).value);
    expect((await registry.testCompatibility(`${topic}-value`, widened)).compatible).toBe(true);
  });

  it('a consumer that knows only the first version decodes the latest events', async () => {
    const c = makeCodec();
    const p = await publisher('first', c);
    const v2 = step(base, (cols) => [...cols, { name: 'note', type: { kind: 'string' }, nullable: true, sourceType: 'text' }]);
    const v3 = step(v2, set('label', { type: { kind: 'string' }, sourceType: 'text', nullable: false }));
    const v4 = step(v3, (cols) => cols.filter((x) => x.name !== 'ratio'));
    // Only changes an old reader can follow: add, drop, nullability, varchar widening (int ->
    // bigint is not one: an int reader cannot read a long).
    const events = [base, v2, v3, v4].map((s, i) => from('first', changeEvent(s, 'u', { id: 1 }, { ...rowFor(s, 1), id: 1, label: `v${i + 1}` })));
    for (const e of events) await p.publish({ records: changes([e]), checkpoint: null });
    const topic = sourceTopics(prefix, 'first').table(base.id);
    expect(await registry.versions(`${topic}-value`)).toEqual([1, 2, 3, 4]);
    const v1Text = await registry.schemaById((await registry.lookup(`${topic}-value`, JSON.stringify(deriveSchemas(base, topic).value)))!.id);
    const msgs = await consumeN(kafka, topic, events.length);
    const seen = await Promise.all(msgs.map((m) => makeCodec().decodeChangeAs(asRecord(m), v1Text)));
    expect(seen.map((e) => e!.schema)).toEqual([base, base, base, base]);
    expect(seen.map((e) => e!.after)).toEqual([
      { id: 1, qty: 10, label: 'v1', ratio: 0.5 },
      { id: 1, qty: 10, label: 'v2', ratio: 0.5 },
      { id: 1, qty: 10, label: 'v3', ratio: 0.5 },
      { id: 1, qty: 10, label: 'v4' }, // ratio dropped by the writer: absent, not null
    ]);
  });
});

// ---------------------------------------------------------------- one table stops, others go on

describe('a refused change stops one table only', () => {
  it('parks the refused table’s events (kept, JSON) while the other table keeps flowing', async () => {
    const other: TableSchema = { ...base, id: { db: 'app', schema: 'public', table: 'other' } };
    const p = await publisher('park');
    const tx = (events: ChangeEvent[], id: string): SourceRecord[] => [
      { type: 'transaction', event: { status: 'BEGIN', id, event_count: null, data_collections: null, ts_ms: 1, source: 'park', position: { kind: 'pg', lsn: '0/1' } } },
      ...changes(
        events.map((e, i) => ({
          ...e,
          source: { ...e.source, name: 'park' },
          transaction: { id, total_order: i + 1, data_collection_order: events.slice(0, i + 1).filter((x) => x.schema.id.table === e.schema.id.table).length },
        })),
      ),
      {
        type: 'transaction',
        event: {
          status: 'END', id, event_count: events.length, ts_ms: 1, source: 'park', position: { kind: 'pg', lsn: '0/2' },
          data_collections: [...new Set(events.map((e) => `${e.schema.id.db}.${e.schema.id.schema}.${e.schema.id.table}`))].map((dc) => ({
            data_collection: dc,
            event_count: events.filter((e) => `${e.schema.id.db}.${e.schema.id.schema}.${e.schema.id.table}` === dc).length,
          })),
        },
      },
    ];
    await p.publish({ records: tx([changeEvent(base, 'c', null, rowFor(base, 1)), changeEvent(other, 'c', null, rowFor(other, 1))], 'tx1'), checkpoint: null });
    const narrowed = step(base, set('qty', { type: { kind: 'int', bits: 16 }, sourceType: 'smallint' }));
    await p.publish({
      records: tx([changeEvent(narrowed, 'c', null, rowFor(narrowed, 2)), changeEvent(other, 'c', null, rowFor(other, 2)), changeEvent(base, 'c', null, rowFor(base, 3))], 'tx2'),
      checkpoint: null,
    });
    await p.publish({ records: tx([changeEvent(other, 'c', null, rowFor(other, 3))], 'tx3'), checkpoint: null });

    const topics = sourceTopics(prefix, 'park');
    const otherMsgs = await consumeN(kafka, topics.table(other.id), 3);
    const otherEvents = await Promise.all(otherMsgs.map(async (m) => (await codec.decodeChange(asRecord(m)))!));
    expect(otherEvents.map((e) => e.after!.id)).toEqual([1, 2, 3]);
    // In tx2 the parked event came first: the published one is renumbered so that a sink
    // assembling tx2 by consecutive total_order up to event_count finds it.
    expect(otherEvents.map((e) => e.transaction!.total_order)).toEqual([2, 1, 1]);
    // The stopped table got only its event from before the refusal ...
    const stoppedMsgs = await consumeN(kafka, topics.table(base.id), 1);
    expect((await codec.decodeChange(asRecord(stoppedMsgs[0]!)))!.after!.id).toBe(1);
    // ... and its later events (even in the old shape) are parked with the reason, with their
    // original transaction numbers.
    const parked = await consumeN(kafka, `${topics.prefix}.parked`, 2);
    expect(parked.map((m) => (JSON.parse(m.value!.toString()) as { transaction: { total_order: number } }).transaction.total_order)).toEqual([1, 3]);
    expect(parked.map((m) => (JSON.parse(m.value!.toString()) as { after: Row }).after.id)).toEqual([2, 3]);
    expect(String(parked[0]!.headers!['cdc.parked.reason'])).toMatch(/column "qty" integer -> smallint.*integer range narrowed/);
    expect(String(parked[0]!.headers!['cdc.parked.topic'])).toBe(topics.table(base.id));
    // The END of tx2 no longer counts the parked events, so transaction-mode sinks do not wait for them.
    // Fix the cause (accept the narrowing) and replay: the parked events reach their topic, in
    // order, with the new version registered; a second replay finds nothing new.
    const subject = `${topics.table(base.id)}-value`;
    await registry.setCompatibility(subject, 'NONE');
    const cfg = pipelineConfig.parse({
      name: prefix,
      kafka: { brokers: [REGISTRY_KAFKA], partitions: 1, encoding: 'avro', schemaRegistry: { url: REGISTRY } },
      sources: [{ name: 'park', url: 'postgres://postgres@127.0.0.1:55432/unused' }],
    });
    const log = createLogger('error');
    expect(await replayParked({ kafka, cfg, source: cfg.sources[0]!, table: 'app.public.evolving', codec: makeCodec(), log })).toEqual({ replayed: 2, alreadyReplayed: 0 });
    expect(await replayParked({ kafka, cfg, source: cfg.sources[0]!, table: 'app.public.evolving', codec: makeCodec(), log })).toEqual({ replayed: 0, alreadyReplayed: 2 });
    const all = await consumeN(kafka, topics.table(base.id), 3);
    const replayed = await Promise.all(all.slice(1).map(async (m) => (await makeCodec().decodeChange(asRecord(m)))!));
    expect(replayed.map((e) => [e.after!.id, e.schema.columns.find((c) => c.name === 'qty')!.sourceType, e.transaction])).toEqual([
      [2, 'smallint', null],
      [3, 'integer', null],
    ]);
    expect(await registry.versions(subject)).toEqual([1, 2]); // the narrowed shape; id 3 reused version 1

    const txMsgs = await consumeN(kafka, topics.transaction, 6);
    const ends = (await Promise.all(txMsgs.map((m) => codec.decodeTransaction(asRecord(m))))).filter((t) => t.status === 'END');
    expect(ends.map((t) => [t.id, t.event_count, t.data_collections])).toEqual([
      ['tx1', 2, [{ data_collection: 'app.public.evolving', event_count: 1 }, { data_collection: 'app.public.other', event_count: 1 }]],
      ['tx2', 1, [{ data_collection: 'app.public.other', event_count: 1 }]],
      ['tx3', 1, [{ data_collection: 'app.public.other', event_count: 1 }]],
    ]);
  });
});
