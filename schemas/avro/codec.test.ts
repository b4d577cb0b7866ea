import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { changeEvent, keyOnly, mysqlAllTypes, mysqlRows, pgAllTypes, pgRows } from '../../test/schemas/fixtures.js';
import type { ChangeEvent, TransactionEvent } from '../change-event.js';
import { TableError } from '../errors.js';
import type { TableSchema } from '../table-schema.js';
import { avroCodec } from './codec.js';
import { SchemaIncompatibleError } from './evolution.js';
import { parseAvro } from './long.js';
import { memoryRegistry } from './memory-registry.js';
import { SchemaRegistryError } from './registry.js';
import { unframe } from './wire.js';

const topicOf = (e: ChangeEvent) => ['test', e.source.name, e.schema.id.db, ...(e.schema.id.schema ? [e.schema.id.schema] : []), e.schema.id.table].join('.');

function setup() {
  const registry = memoryRegistry();
  const codec = avroCodec({ registry, topicOf, transactionTopicOf: (t) => `test.${t.source}.transaction` });
  return { registry, codec };
}

/** Decodes a framed value with the registry's schema and plain avsc: what a generic consumer sees. */
async function plainDecode(registry: ReturnType<typeof memoryRegistry>, buf: Buffer): Promise<Record<string, unknown>> {
  const { schemaId, body } = unframe(buf);
  return parseAvro(await registry.schemaById(schemaId)).fromBuffer(body) as Record<string, unknown>;
}

describe('avro codec round trip', () => {
  for (const [schema, rows] of [
    [pgAllTypes, pgRows],
    [mysqlAllTypes, mysqlRows],
  ] as const) {
    it(`keeps every canonical value of ${schema.dialect} exactly`, async () => {
      const { codec } = setup();
      for (const row of rows) {
        for (const e of [
          changeEvent(schema, 'c', null, row),
          changeEvent(schema, 'u', keyOnly(schema, row), row),
          changeEvent(schema, 'u', row, row),
          changeEvent(schema, 'd', keyOnly(schema, row), null),
          changeEvent(schema, 'r', null, row),
        ]) {
          const rec = await codec.encodeChange(e);
          const back = await codec.decodeChange(rec);
          expect(back).toEqual(e);
          // The wire copy must survive JSON the same way the JSON codec's events do.
          expect(JSON.parse(JSON.stringify(back))).toEqual(JSON.parse(JSON.stringify(e)));
        }
      }
    });
  }

  it('keeps truncates (no rows, no key) and tombstones', async () => {
    const { codec } = setup();
    const e = changeEvent(pgAllTypes, 't', null, null);
    const rec = await codec.encodeChange(e);
    expect(rec.key).toBeNull();
    expect(await codec.decodeChange(rec)).toEqual(e);
    expect(await codec.decodeChange({ key: rec.key, value: null, headers: rec.headers })).toBeNull();
  });

  it('writes the Confluent wire format with registered ids under TopicNameStrategy subjects', async () => {
    const { codec, registry } = setup();
    const e = changeEvent(pgAllTypes, 'c', null, pgRows[0]!);
    const rec = await codec.encodeChange(e);
    expect(rec.value![0]).toBe(0);
    expect(rec.key![0]).toBe(0);
    const valueLatest = await registry.latest('test.pg1.shop.public.all_types-value');
    const keyLatest = await registry.latest('test.pg1.shop.public.all_types-key');
    expect(rec.value!.readUInt32BE(1)).toBe(valueLatest!.id);
    expect(rec.key!.readUInt32BE(1)).toBe(keyLatest!.id);
    expect(await registry.getCompatibility('test.pg1.shop.public.all_types-value')).toBe('BACKWARD');
    expect(Object.keys(rec.headers)).toEqual(['cdc.position']);
  });

  it('puts ordinary values in typed Avro fields and only awkward ones in __cdc.raw', async () => {
    const { codec, registry } = setup();
    const plain = await plainDecode(registry, (await codec.encodeChange(changeEvent(pgAllTypes, 'c', null, pgRows[0]!))).value!);
    const after = plain.after as Record<string, unknown>;
    expect(after.__cdc).toBeNull();
    expect(after.id).toBe(1n);
    expect(after.amount).toEqual(Buffer.from([0x01, 0x90, 0x32]));
    expect(after.day).toBe(Date.UTC(2026, 10, 25) / 86_400_000);
    expect(after.tstz).toBe(BigInt(Date.UTC(2026, 10, 25, 22, 8, 24, 123)) * 1000n + 456n);
    expect(after.mood).toBe('happy');
    expect(Object.entries(after).find(([k]) => /^Odd_Name__[0-9a-f]{8}$/.test(k))?.[1]).toBe('x');

    const awkward = await plainDecode(registry, (await codec.encodeChange(changeEvent(pgAllTypes, 'c', null, pgRows[1]!))).value!);
    const a2 = awkward.after as Record<string, unknown> & { __cdc: { raw: Record<string, string>; absent: string[] } };
    expect(a2.amount).toBeNull();
    expect(a2.day).toBeNull();
    expect(a2.real).toBeNaN();
    expect(a2.__cdc.raw).toEqual({ amount: '"NaN"', day: '"infinity"', t: '"24:00:00"', ts: '"-infinity"', tstz: '"infinity"', nums: '["NaN","1.00"]' });
  });

  it('marks the columns a key-only before image does not have as absent, not null', async () => {
    const { codec, registry } = setup();
    const e = changeEvent(pgAllTypes, 'd', { id: '5' }, null);
    const rec = await codec.encodeChange(e);
    const plain = await plainDecode(registry, rec.value!);
    expect((plain.before as { __cdc: { absent: string[] } }).__cdc.absent).toHaveLength(pgAllTypes.columns.length - 1);
    expect((await codec.decodeChange(rec))!.before).toEqual({ id: '5' });
  });

  it('encodes equal keys to equal bytes (partitioning, compaction)', async () => {
    const { codec } = setup();
    const a = await codec.encodeChange(changeEvent(mysqlAllTypes, 'c', null, mysqlRows[0]!));
    const b = await codec.encodeChange(changeEvent(mysqlAllTypes, 'u', mysqlRows[0]!, { ...mysqlRows[0]!, tiny: 5 }));
    expect(a.key!.equals(b.key!)).toBe(true);
  });

  it('round-trips transaction boundaries', async () => {
    const { codec } = setup();
    const begin: TransactionEvent = { status: 'BEGIN', id: '771', event_count: null, data_collections: null, ts_ms: 1795644504907, source: 'pg1', position: { kind: 'pg', lsn: '0/10' } };
    const end: TransactionEvent = { ...begin, status: 'END', event_count: 3, data_collections: [{ data_collection: 'shop.public.a', event_count: 3 }], position: { kind: 'pg', lsn: '0/20' } };
    for (const t of [begin, end]) expect(await codec.decodeTransaction(await codec.encodeTransaction(t))).toEqual(t);
  });

  it('still decodes records written with the JSON codec (switching encoding on a live pipeline)', async () => {
    const { codec } = setup();
    const { jsonCodec } = await import('../codec/json.js');
    const e = changeEvent(pgAllTypes, 'u', keyOnly(pgAllTypes, pgRows[0]!), pgRows[0]!);
    expect(await codec.decodeChange(await jsonCodec().encodeChange(e))).toEqual(e);
    const t: TransactionEvent = { status: 'BEGIN', id: '9', event_count: null, data_collections: null, ts_ms: 1, source: 'pg1', position: { kind: 'pg', lsn: '0/1' } };
    expect(await codec.decodeTransaction(await jsonCodec().encodeTransaction(t))).toEqual(t);
    await expect(codec.decodeChange({ key: null, value: Buffer.from('{"op":"c"}'), headers: {} })).rejects.toThrow(/not a Confluent-framed/);
  });

  it('stops only the table when the registry refuses its schema as invalid (4xx), not the source', async () => {
    const registry = memoryRegistry();
    registry.register = async () => {
      throw new SchemaRegistryError('invalid schema', { status: 422, errorCode: 42201, retriable: false });
    };
    const codec = avroCodec({ registry, topicOf, transactionTopicOf: () => 'x' });
    const err = await codec.encodeChange(changeEvent(pgAllTypes, 'c', null, pgRows[0]!)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TableError);
    expect((err as TableError).code).toBe('SCHEMA_REGISTRY');
    registry.register = async () => {
      throw new SchemaRegistryError('unauthorized', { status: 401, retriable: false });
    };
    const auth = await codec.encodeChange(changeEvent(mysqlAllTypes, 'c', null, mysqlRows[0]!)).catch((e: unknown) => e);
    expect(auth).toBeInstanceOf(SchemaRegistryError);
    expect(auth).not.toBeInstanceOf(TableError);
  });

  it('asks the registry once per table version, not per event', async () => {
    const { codec, registry } = setup();
    await codec.encodeChange(changeEvent(pgAllTypes, 'c', null, pgRows[0]!));
    const after = registry.requests;
    for (let i = 0; i < 50; i++) await codec.encodeChange(changeEvent(pgAllTypes, 'c', null, pgRows[0]!));
    // A new but equal TableSchema object (e.g. after a connector restart) is recognised by content.
    await codec.encodeChange(changeEvent(structuredClone(pgAllTypes), 'c', null, pgRows[0]!));
    // So is one whose column types list their properties in another order.
    const reordered = { ...pgAllTypes, columns: pgAllTypes.columns.map((c) => ({ ...c, type: Object.fromEntries(Object.entries(c.type).reverse()) as typeof c.type })) };
    await codec.encodeChange(changeEvent(reordered, 'c', null, pgRows[0]!));
    expect(registry.requests).toBe(after);
  });
});

describe('avro codec evolution', () => {
  const base: TableSchema = {
    id: { db: 'app', schema: 'public', table: 'items' },
    dialect: 'postgres',
    primaryKey: ['id'],
    columns: [
      { name: 'id', type: { kind: 'int', bits: 32 }, nullable: false, sourceType: 'integer' },
      { name: 'qty', type: { kind: 'int', bits: 32 }, nullable: false, sourceType: 'integer' },
      { name: 'label', type: { kind: 'string', length: 20 }, nullable: true, sourceType: 'character varying(20)' },
    ],
  };
  const withColumns = (f: (cols: TableSchema['columns']) => TableSchema['columns']): TableSchema => ({ ...base, columns: f(structuredClone(base.columns)) });

  it('registers widenings and additions as new versions, and old events still decode', async () => {
    const { codec, registry } = setup();
    const v1 = changeEvent(base, 'c', null, { id: 1, qty: 5, label: 'a' });
    const r1 = await codec.encodeChange(v1);
    const v2Schema = withColumns((c) => [...c, { name: 'extra', type: { kind: 'string' }, nullable: true, sourceType: 'text' }]);
    const v3Schema = withColumns((c) => {
      c[1] = { name: 'qty', type: { kind: 'int', bits: 64 }, nullable: true, sourceType: 'bigint' };
      c[2] = { name: 'label', type: { kind: 'string', length: 80 }, nullable: true, sourceType: 'character varying(80)' };
      return c;
    });
    const r2 = await codec.encodeChange(changeEvent(v2Schema, 'c', null, { id: 2, qty: 6, label: 'b', extra: 'x' }));
    const r3 = await codec.encodeChange(changeEvent(v3Schema, 'c', null, { id: 3, qty: '9007199254740993', label: 'c'.repeat(80) }));
    expect(await registry.versions('test.pg1.app.public.items-value')).toEqual([1, 2, 3]);
    expect((await codec.decodeChange(r1))!.after).toEqual({ id: 1, qty: 5, label: 'a' });
    expect((await codec.decodeChange(r2))!.schema).toEqual(v2Schema);
    expect((await codec.decodeChange(r3))!.after).toEqual({ id: 3, qty: '9007199254740993', label: 'c'.repeat(80) });
  });

  it('reuses the ids of old versions when events are replayed after a restart (no new version, no refusal)', async () => {
    const { codec, registry } = setup();
    const v2 = withColumns((c) => [...c, { name: 'extra', type: { kind: 'string' }, nullable: true, sourceType: 'text' }]);
    const r1 = await codec.encodeChange(changeEvent(base, 'c', null, { id: 1, qty: 5, label: 'a' }));
    await codec.encodeChange(changeEvent(v2, 'c', null, { id: 2, qty: 6, label: 'b', extra: 'x' }));
    // A new process replays from an older checkpoint: the first events still have the old shape.
    const restarted = avroCodec({ registry, topicOf, transactionTopicOf: (t) => `test.${t.source}.transaction` });
    const again = await restarted.encodeChange(changeEvent(structuredClone(base), 'c', null, { id: 1, qty: 5, label: 'a' }));
    expect(again.value!.readUInt32BE(1)).toBe(r1.value!.readUInt32BE(1));
    expect(await registry.versions('test.pg1.app.public.items-value')).toEqual([1, 2]);
  });

  it('refuses a narrowing with a TableError naming the table, the column and the rule', async () => {
    const { codec, registry } = setup();
    await codec.encodeChange(changeEvent(base, 'c', null, { id: 1, qty: 5, label: 'a' }));
    const narrowed = withColumns((c) => {
      c[2] = { name: 'label', type: { kind: 'string', length: 10 }, nullable: true, sourceType: 'character varying(10)' };
      return c;
    });
    const err = await codec.encodeChange(changeEvent(narrowed, 'c', null, { id: 2, qty: 1, label: 'b' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SchemaIncompatibleError);
    expect(err).toBeInstanceOf(TableError);
    expect((err as TableError).table).toBe('app.public.items');
    expect((err as Error).message).toMatch(/column "label" character varying\(20\) -> character varying\(10\).*string length narrowed/);
    expect(await registry.versions('test.pg1.app.public.items-value')).toEqual([1]);
    // Still refused on the next event (not cached as a success), and the old version still works.
    await expect(codec.encodeChange(changeEvent(narrowed, 'c', null, { id: 3, qty: 1, label: 'c' }))).rejects.toBeInstanceOf(SchemaIncompatibleError);
    await expect(codec.encodeChange(changeEvent(base, 'c', null, { id: 4, qty: 1, label: 'd' }))).resolves.toBeTruthy();
  });

  it('refuses what only Avro sees (int64 -> int32) with the Avro reason', async () => {
    const { codec } = setup();
    const wide = withColumns((c) => {
      c[1] = { name: 'qty', type: { kind: 'int', bits: 64 }, nullable: false, sourceType: 'bigint' };
      return c;
    });
    await codec.encodeChange(changeEvent(wide, 'c', null, { id: 1, qty: '5', label: 'a' }));
    const err = (await codec.encodeChange(changeEvent(base, 'c', null, { id: 2, qty: 5, label: 'a' })).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/column "qty" bigint -> integer .*integer range narrowed/);
  });

  it('lets a refused change through once the subject is set to NONE', async () => {
    const { codec, registry } = setup();
    await codec.encodeChange(changeEvent(base, 'c', null, { id: 1, qty: 5, label: 'a' }));
    const narrowed = withColumns((c) => {
      c[2] = { name: 'label', type: { kind: 'string', length: 10 }, nullable: true, sourceType: 'character varying(10)' };
      return c;
    });
    await expect(codec.encodeChange(changeEvent(narrowed, 'c', null, { id: 2, qty: 1, label: 'b' }))).rejects.toThrow();
    await registry.setCompatibility('test.pg1.app.public.items-value', 'NONE');
    await expect(codec.encodeChange(changeEvent(narrowed, 'c', null, { id: 2, qty: 1, label: 'b' }))).resolves.toBeTruthy();
  });

  it('decodes new events with a consumer that knows only the first version (schema resolution)', async () => {
    const { codec, registry } = setup();
    await codec.encodeChange(changeEvent(base, 'c', null, { id: 1, qty: 5, label: 'a' }));
    const first = (await registry.latest('test.pg1.app.public.items-value'))!.schema;
    const later = withColumns((c) => [
      c[0]!,
      { ...c[1]!, nullable: true },
      { name: 'label', type: { kind: 'string' }, nullable: true, sourceType: 'text' },
      { name: 'extra', type: { kind: 'bool' }, nullable: true, sourceType: 'boolean' },
    ]);
    const rec = await codec.encodeChange(changeEvent(later, 'u', { id: 7 }, { id: 7, qty: null, label: 'long label', extra: true }));
    const seen = await codec.decodeChangeAs(rec, first);
    expect(seen!.schema).toEqual(base);
    expect(seen!.after).toEqual({ id: 7, qty: null, label: 'long label' });
    expect(seen!.before).toEqual({ id: 7 });
    // A column the reader has but the writer lacks is absent, not null.
    const dropped = withColumns((c) => [c[0]!, c[1]!]);
    const rec2 = await codec.encodeChange(changeEvent(dropped, 'c', null, { id: 8, qty: 1 }));
    expect((await codec.decodeChangeAs(rec2, first))!.after).toEqual({ id: 8, qty: 1 });
  });
});

describe('derived schemas', () => {
  it('parse with stock avsc too (no custom options needed for reading)', async () => {
    const { codec, registry } = setup();
    const rec = await codec.encodeChange(changeEvent(pgAllTypes, 'c', null, pgRows[0]!));
    const text = await registry.schemaById(unframe(rec.value!).schemaId);
    const json = JSON.parse(text) as { name: string; namespace: string };
    expect(`${json.namespace}.${json.name}`).toBe('test.pg1.shop.public.all_types.Envelope');
    expect(() => avro.Type.forSchema(json as avro.Schema)).not.toThrow();
  });
});
