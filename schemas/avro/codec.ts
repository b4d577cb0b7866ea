import type avro from 'avsc';
import { type ChangeEvent, type Op, type SourceInfo, type TransactionEvent, type TransactionInfo, eventKey } from '../change-event.js';
import type { Row } from '../column-types.js';
import { CdcError, PoisonRecordError, TableError } from '../errors.js';
import { decodePosition, encodePosition } from '../position.js';
import { type TableSchema, tableName } from '../table-schema.js';
import { jsonCodec } from '../codec/json.js';
import { type EncodedRecord, type EventCodec, HEADER, type SchemaStore } from '../codec/types.js';
import { type AvroSchema } from './columns.js';
import { type FieldPlan, deriveSchemas, readRowRecord, valueRecordOf } from './derive.js';
import { SchemaIncompatibleError, checkEvolution } from './evolution.js';
import { parseAvro } from './long.js';
import { avroNamespace } from './names.js';
import { type CompatibilityLevel, type SchemaRegistryClient, SchemaRegistryError } from './registry.js';
import { rowDecoder, rowEncoder } from './rows.js';
import { encodeFramed, frame, unframe } from './wire.js';

export interface AvroCodecOptions {
  registry: SchemaRegistryClient;
  /**
   * Topic of a change event. Subjects follow Confluent's TopicNameStrategy (`<topic>-key`,
   * `<topic>-value`) and the Avro namespace is the topic name, so the codec must know it.
   */
  topicOf(e: ChangeEvent): string;
  /** Topic of a transaction boundary event. */
  transactionTopicOf(t: TransactionEvent): string;
  /** Compatibility level set on subjects this codec creates. @defaultValue BACKWARD */
  compatibility?: CompatibilityLevel;
  /** Where JSON records written before a switch to Avro name their schemas (`cdc.schema.ref`). */
  jsonSchemaStore?: SchemaStore;
}

export interface AvroCodec extends EventCodec {
  readonly name: 'avro';
  /**
   * Decodes with the writer's schema and resolves the record to `readerSchema` (an envelope
   * schema of the same table, e.g. the first version a consumer was built with): columns the
   * reader does not know are dropped, columns the writer did not have are absent, promoted
   * types (int -> long, float -> double) are widened. The event's `schema` is the reader's.
   */
  decodeChangeAs(r: EncodedRecord, readerSchema: string): Promise<ChangeEvent | null>;
  /** Registered key/value schema ids of a table version (registers it when needed). */
  schemaIds(e: ChangeEvent): Promise<{ key: number | null; value: number }>;
}

type AvroRecord = Record<string, unknown>;

interface EncodePlan {
  key: { id: number; type: avro.Type; encode: (row: Row) => AvroRecord } | null;
  value: { id: number; type: avro.Type };
  encodeRow: (row: Row) => AvroRecord;
}

interface ChangeDecodePlan {
  kind: 'change';
  type: avro.Type;
  schema: TableSchema;
  fields: FieldPlan[];
  decodeRow: (rec: AvroRecord) => Row;
}

interface TransactionDecodePlan {
  kind: 'transaction';
  type: avro.Type;
}

type DecodePlan = ChangeDecodePlan | TransactionDecodePlan;

// ------------------------------------------------------------------ source / transaction blocks

const OPTIONAL_SOURCE_KEYS = ['ts_us', 'lsn', 'commit_lsn', 'file', 'pos', 'row', 'server_id', 'origin'] as const;

function encodeSource(s: SourceInfo): AvroRecord {
  const out: AvroRecord = {
    version: s.version,
    connector: s.connector,
    name: s.name,
    ts_ms: s.ts_ms,
    snapshot: s.snapshot,
    db: s.db,
    schema: s.schema,
    table: s.table,
    txId: s.txId,
    gtid: s.gtid ?? null,
  };
  for (const k of OPTIONAL_SOURCE_KEYS) {
    const v = s[k];
    out[k] = v === undefined || v === null ? null : v;
  }
  return out;
}

function decodeSource(a: AvroRecord): SourceInfo {
  const s: SourceInfo = {
    version: a.version as string,
    connector: a.connector as SourceInfo['connector'],
    name: a.name as string,
    ts_ms: Number(a.ts_ms as bigint),
    snapshot: a.snapshot as SourceInfo['snapshot'],
    db: a.db as string,
    schema: a.schema as string | null,
    table: a.table as string,
    txId: a.txId as string | null,
  };
  const o = s as unknown as Record<string, unknown>;
  for (const k of OPTIONAL_SOURCE_KEYS) {
    const v = a[k];
    if (v !== null && v !== undefined) o[k] = typeof v === 'bigint' ? Number(v) : v;
  }
  // MySQL events always say which GTID they belong to, null included; others never have one.
  if (a.gtid !== null || s.connector === 'mysql') s.gtid = a.gtid as string | null;
  return s;
}

function encodeTxBlock(t: TransactionInfo | null): AvroRecord | null {
  return t === null ? null : { id: t.id, total_order: t.total_order, data_collection_order: t.data_collection_order };
}

function decodeTxBlock(a: AvroRecord | null): TransactionInfo | null {
  return a === null ? null : { id: a.id as string, total_order: Number(a.total_order as bigint), data_collection_order: Number(a.data_collection_order as bigint) };
}

function transactionSchemas(topic: string): { key: AvroSchema; value: AvroSchema } {
  const namespace = avroNamespace(topic);
  return {
    key: { type: 'record', name: 'Key', namespace, fields: [{ name: 'id', type: 'string' }] },
    value: {
      type: 'record',
      name: 'Value',
      namespace,
      'cdc.kind': 'transaction',
      fields: [
        { name: 'status', type: 'string' },
        { name: 'id', type: 'string' },
        { name: 'event_count', type: ['null', 'long'], default: null },
        {
          name: 'data_collections',
          type: [
            'null',
            {
              type: 'array',
              items: {
                type: 'record',
                name: 'DataCollection',
                namespace: 'cdc',
                fields: [
                  { name: 'data_collection', type: 'string' },
                  { name: 'event_count', type: 'long' },
                ],
              },
            },
          ],
          default: null,
        },
        { name: 'ts_ms', type: 'long' },
        { name: 'source', type: 'string' },
      ],
    },
  };
}

// ------------------------------------------------------------------ codec

/** Caches keyed by schema text stay small: one entry per table version (bounded anyway). */
const MAX_CACHED = 10_000;

function remember<K, V>(map: Map<K, V>, key: K, value: V): V {
  if (map.size >= MAX_CACHED) map.clear();
  map.set(key, value);
  return value;
}

/**
 * Avro in the Confluent wire format, with schemas in a Confluent-compatible registry.
 *
 * Encoding derives the table's key and value schemas from the event's TableSchema (once per
 * table version), registers a new version only after checking it BACKWARD-compatible with the
 * subject's latest (our column rules, then the registry's own check), and throws a
 * {@link SchemaIncompatibleError} (a TableError) when it is not. Decoding reads the writer's
 * schema by id from the record and rebuilds the TableSchema from its metadata.
 */
export function avroCodec(o: AvroCodecOptions): AvroCodec {
  const compatibility = o.compatibility ?? 'BACKWARD';
  const byObject = new WeakMap<TableSchema, { topic: string; plan: Promise<EncodePlan> }>();
  const byText = new Map<string, Promise<EncodePlan>>();
  const registered = new Map<string, Promise<number>>();
  const byId = new Map<number, Promise<DecodePlan>>();
  const readers = new Map<string, { type: avro.Type; fields: FieldPlan[]; schema: TableSchema; resolvers: Map<number, avro.Resolver> }>();
  const txPlans = new Map<string, Promise<{ keyId: number; valueId: number; key: avro.Type; value: avro.Type }>>();
  const json = jsonCodec(o.jsonSchemaStore ? { store: o.jsonSchemaStore } : {});

  /** A cached promise that is forgotten if it fails, so a retry asks the registry again. */
  function cached<K, V>(map: Map<K, Promise<V>>, key: K, make: () => Promise<V>): Promise<V> {
    let p = map.get(key);
    if (p === undefined) {
      p = make();
      remember(map, key, p);
      p.catch(() => {
        if (map.get(key) === p) map.delete(key);
      });
    }
    return p;
  }

  function tableOfSchemaText(text: string, record: 'key' | 'value'): TableSchema | undefined {
    try {
      const json = JSON.parse(text) as unknown;
      const rec = record === 'value' ? valueRecordOf(json) : (json as Record<string, unknown>);
      return rec ? readRowRecord(rec)?.schema : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * The id of `text` under `subject`, registering it when new. `table` (the version's columns)
   * enables our column rules against the subject's latest version.
   */
  function ensureRegistered(subject: string, text: string, table: TableSchema | null, record: 'key' | 'value'): Promise<number> {
    return cached(registered, `${subject}\u0000${text}`, async () => {
      const found = await o.registry.lookup(subject, text);
      if (found) return found.id;
      const latest = await o.registry.latest(subject);
      if (latest === null) {
        // A new subject gets our level, unless someone configured it beforehand.
        if ((await o.registry.getCompatibility(subject)) === null) await o.registry.setCompatibility(subject, compatibility);
        return o.registry.register(subject, text);
      }
      const level = (await o.registry.getCompatibility(subject)) ?? (await o.registry.globalCompatibility());
      if (table !== null && level !== 'NONE') {
        const prev = tableOfSchemaText(latest.schema, record);
        if (prev) {
          const violations = checkEvolution(prev, table);
          if (violations.length > 0) throw new SchemaIncompatibleError(table, subject, violations);
        }
      }
      const check = await o.registry.testCompatibility(subject, text);
      if (!check.compatible) {
        if (table === null) throw new CdcError(`schema for ${subject} refused by the registry: ${check.messages.join('; ')}`, { code: 'SCHEMA_INCOMPATIBLE' });
        throw new SchemaIncompatibleError(table, subject, [], check.messages);
      }
      try {
        return await o.registry.register(subject, text);
      } catch (err) {
        if (err instanceof SchemaRegistryError && err.status === 409 && table !== null) throw new SchemaIncompatibleError(table, subject, [], [err.message]);
        throw err;
      }
    });
  }

  function buildPlan(s: TableSchema, topic: string): Promise<EncodePlan> {
    const d = deriveSchemas(s, topic);
    const valueText = JSON.stringify(d.value);
    const keyText = d.key === null ? null : JSON.stringify(d.key);
    return cached(byText, `${topic}\u0000${valueText}\u0000${keyText ?? ''}`, async () => {
      const keyTable = { ...s, columns: s.columns.filter((c) => s.primaryKey.includes(c.name)) };
      let valueId: number;
      let keyId: number | null;
      try {
        [valueId, keyId] = await Promise.all([
          ensureRegistered(`${topic}-value`, valueText, s, 'value'),
          keyText === null ? Promise.resolve(null) : ensureRegistered(`${topic}-key`, keyText, keyTable, 'key'),
        ]);
      } catch (err) {
        throw tableScoped(err, s, topic);
      }
      return {
        value: { id: valueId, type: parseAvro(d.value as object) },
        key: keyId === null || d.key === null ? null : { id: keyId, type: parseAvro(d.key as object), encode: rowEncoder(d.keyFields, true) },
        encodeRow: rowEncoder(d.valueFields, false),
      };
    });
  }

  /**
   * A registry answer that concerns this table version only (e.g. 422, the schema refused as
   * invalid) stops the table, not the source. Unreachable registries (retriable) and
   * authentication failures (every table would fail alike) stay as they are: the source waits
   * or stops with the reason.
   */
  function tableScoped(err: unknown, s: TableSchema, topic: string): unknown {
    if (!(err instanceof SchemaRegistryError) || err.retriable || err.status === 401 || err.status === 403) return err;
    return new TableError(tableName(s.id), `schema registry refused the schema of ${tableName(s.id)} (subject ${topic}-value): ${err.message}`, {
      code: 'SCHEMA_REGISTRY',
      cause: err,
    });
  }

  function planFor(e: ChangeEvent): Promise<EncodePlan> {
    const topic = o.topicOf(e);
    const hit = byObject.get(e.schema);
    if (hit && hit.topic === topic) return hit.plan;
    const plan = buildPlan(e.schema, topic);
    byObject.set(e.schema, { topic, plan });
    plan.catch(() => {
      if (byObject.get(e.schema)?.plan === plan) byObject.delete(e.schema);
    });
    return plan;
  }

  function decodePlan(id: number): Promise<DecodePlan> {
    return cached(byId, id, async () => {
      let text: string;
      try {
        text = await o.registry.schemaById(id);
      } catch (err) {
        if (err instanceof SchemaRegistryError && err.status === 404) throw new PoisonRecordError(`schema id ${id} is not in the registry at ${o.registry.url}`, err);
        throw err;
      }
      let json: Record<string, unknown>;
      let type: avro.Type;
      try {
        json = JSON.parse(text) as Record<string, unknown>;
        type = parseAvro(json);
      } catch (err) {
        throw new PoisonRecordError(`schema id ${id} is not a usable Avro schema: ${(err as Error).message}`, err);
      }
      if (json['cdc.kind'] === 'transaction') return { kind: 'transaction', type };
      const rec = valueRecordOf(json);
      const meta = rec ? readRowRecord(rec) : undefined;
      if (!meta) throw new PoisonRecordError(`schema id ${id} carries no cdc.table metadata: not written by this pipeline`);
      return { kind: 'change', type, schema: meta.schema, fields: meta.fields, decodeRow: rowDecoder(meta.fields) };
    });
  }

  function position(r: EncodedRecord) {
    const p = r.headers[HEADER.position];
    if (p === undefined) throw new PoisonRecordError(`record has no ${HEADER.position} header: not written by this pipeline`);
    return decodePosition(p);
  }

  function readBody(plan: DecodePlan, body: Buffer, resolver?: avro.Resolver, reader?: avro.Type): AvroRecord {
    try {
      return (reader ?? plan.type).fromBuffer(body, resolver) as AvroRecord;
    } catch (err) {
      throw new PoisonRecordError(`undecodable Avro record: ${(err as Error).message}`, err);
    }
  }

  function envelopeToEvent(env: AvroRecord, decodeRow: (rec: AvroRecord) => Row, schema: TableSchema, r: EncodedRecord): ChangeEvent {
    return {
      before: env.before === null ? null : decodeRow(env.before as AvroRecord),
      after: env.after === null ? null : decodeRow(env.after as AvroRecord),
      source: decodeSource(env.source as AvroRecord),
      op: env.op as Op,
      ts_ms: Number(env.ts_ms as bigint),
      transaction: decodeTxBlock(env.transaction as AvroRecord | null),
      schema,
      position: position(r),
    };
  }

  /**
   * Records written before a pipeline switched from `encoding: json` to `avro` are JSON with the
   * schema header: decoded as such, so the switch needs no drained topics.
   */
  const isJsonRecord = (r: EncodedRecord): boolean => r.value !== null && r.value[0] === 0x7b && (r.headers[HEADER.schema] !== undefined || r.headers[HEADER.schemaRef] !== undefined);

  async function changePlan(r: EncodedRecord): Promise<{ plan: ChangeDecodePlan; body: Buffer; id: number } | null> {
    if (r.value === null) return null;
    const { schemaId, body } = unframe(r.value);
    const plan = await decodePlan(schemaId);
    if (plan.kind !== 'change') throw new PoisonRecordError(`schema id ${schemaId} is a transaction schema, not a change event`);
    return { plan, body, id: schemaId };
  }

  function txPlan(t: TransactionEvent) {
    const topic = o.transactionTopicOf(t);
    return cached(txPlans, topic, async () => {
      const s = transactionSchemas(topic);
      const [keyId, valueId] = await Promise.all([
        ensureRegistered(`${topic}-key`, JSON.stringify(s.key), null, 'key'),
        ensureRegistered(`${topic}-value`, JSON.stringify(s.value), null, 'value'),
      ]);
      return { keyId, valueId, key: parseAvro(s.key as object), value: parseAvro(s.value as object) };
    });
  }

  return {
    name: 'avro',
    close: async () => {
      await json.close?.();
    },

    async encodeChange(e) {
      const plan = await planFor(e);
      try {
        const keyRow = eventKey(e);
        const key = keyRow !== null && plan.key !== null ? encodeFramed(plan.key.type, plan.key.id, plan.key.encode(keyRow)) : null;
        const value = encodeFramed(plan.value.type, plan.value.id, {
          before: e.before === null ? null : plan.encodeRow(e.before),
          after: e.after === null ? null : plan.encodeRow(e.after),
          source: encodeSource(e.source),
          op: e.op,
          ts_ms: e.ts_ms,
          transaction: encodeTxBlock(e.transaction),
        });
        return { key, value, headers: { [HEADER.position]: encodePosition(e.position) } };
      } catch (err) {
        // Every value the column types cannot hold goes to __cdc.raw, so this is a malformed
        // event (a connector bug): stop its table, not the source.
        throw new TableError(tableName(e.schema.id), `cannot encode a ${e.op} event of ${tableName(e.schema.id)} as Avro: ${(err as Error).message}`, {
          code: 'ENCODE',
          cause: err,
        });
      }
    },

    async decodeChange(r) {
      if (isJsonRecord(r)) return json.decodeChange(r);
      const p = await changePlan(r);
      if (p === null) return null;
      return envelopeToEvent(readBody(p.plan, p.body), p.plan.decodeRow, p.plan.schema, r);
    },

    async decodeChangeAs(r, readerSchema) {
      const p = await changePlan(r);
      if (p === null) return null;
      let reader = readers.get(readerSchema);
      if (reader === undefined) {
        const json = JSON.parse(readerSchema) as Record<string, unknown>;
        const rec = valueRecordOf(json);
        const meta = rec ? readRowRecord(rec) : undefined;
        if (!meta) throw new CdcError('reader schema carries no cdc.table metadata: pass an envelope schema this codec registered', { code: 'BAD_READER' });
        reader = remember(readers, readerSchema, { type: parseAvro(json), fields: meta.fields, schema: meta.schema, resolvers: new Map() });
      }
      let resolver = reader.resolvers.get(p.id);
      if (resolver === undefined) {
        try {
          resolver = reader.type.createResolver(p.plan.type);
        } catch (err) {
          throw new PoisonRecordError(`schema id ${p.id} cannot be resolved to the reader schema: ${(err as Error).message}`, err);
        }
        reader.resolvers.set(p.id, resolver);
      }
      const writerFields = new Set(p.plan.fields.map((f) => f.field));
      const env = readBody(p.plan, p.body, resolver, reader.type);
      return envelopeToEvent(env, rowDecoder(reader.fields, writerFields), reader.schema, r);
    },

    async schemaIds(e) {
      const plan = await planFor(e);
      return { key: plan.key?.id ?? null, value: plan.value.id };
    },

    async encodeTransaction(t) {
      const plan = await txPlan(t);
      const value = plan.value.toBuffer({
        status: t.status,
        id: t.id,
        event_count: t.event_count === null ? null : BigInt(t.event_count),
        data_collections: t.data_collections === null ? null : t.data_collections.map((d) => ({ data_collection: d.data_collection, event_count: BigInt(d.event_count) })),
        ts_ms: BigInt(t.ts_ms),
        source: t.source,
      });
      return {
        key: frame(plan.keyId, plan.key.toBuffer({ id: t.id })),
        value: frame(plan.valueId, value),
        headers: { [HEADER.position]: encodePosition(t.position) },
      };
    },

    async decodeTransaction(r) {
      if (r.value === null) throw new PoisonRecordError('empty transaction record');
      if (r.value[0] === 0x7b) return json.decodeTransaction(r);
      const { schemaId, body } = unframe(r.value);
      const plan = await decodePlan(schemaId);
      if (plan.kind !== 'transaction') throw new PoisonRecordError(`schema id ${schemaId} is not a transaction schema`);
      const a = readBody(plan, body);
      const dc = a.data_collections as { data_collection: string; event_count: bigint }[] | null;
      return {
        status: a.status as TransactionEvent['status'],
        id: a.id as string,
        event_count: a.event_count === null ? null : Number(a.event_count as bigint),
        data_collections: dc === null ? null : dc.map((d) => ({ data_collection: d.data_collection, event_count: Number(d.event_count) })),
        ts_ms: Number(a.ts_ms as bigint),
        source: a.source as string,
        position: position(r),
      };
    },
  };
}
