import { describe, expect, it } from 'vitest';
import { changeEvent, keyOnly, pgAllTypes, pgRows } from '../../test/schemas/fixtures.js';
import { PoisonRecordError } from '../errors.js';
import type { TableSchema } from '../table-schema.js';
import { jsonCodec } from './json.js';
import { HEADER, type SchemaStore } from './types.js';

/** A store in memory (pure logic: the Kafka-backed one is tested against a broker). */
function memoryStore() {
  const byRef = new Map<string, TableSchema>();
  let puts = 0;
  const store: SchemaStore = {
    async put(s) {
      puts++;
      const ref = `ref${byRef.size}`;
      byRef.set(ref, JSON.parse(JSON.stringify(s)) as TableSchema);
      return ref;
    },
    async get(ref) {
      const s = byRef.get(ref);
      if (!s) throw new PoisonRecordError(`no schema ${ref}`);
      return s;
    },
  };
  return { store, puts: () => puts };
}

describe('json codec: schemas by reference', () => {
  const row = pgRows[0]!;
  const e = changeEvent(pgAllTypes, 'u', keyOnly(pgAllTypes, row), row);

  it('writes a short reference instead of the schema, stores each schema object once, and decodes it back exactly', async () => {
    const m = memoryStore();
    const codec = jsonCodec({ store: m.store });
    const a = await codec.encodeChange(e);
    const b = await codec.encodeChange({ ...e, op: 'c', before: null });
    expect(m.puts()).toBe(1);
    expect(a.headers[HEADER.schema]).toBeUndefined();
    expect(a.headers[HEADER.schemaRef]).toBe('ref0');
    expect(b.headers[HEADER.schemaRef]).toBe('ref0');
    const inline = await jsonCodec().encodeChange(e);
    expect(inline.headers[HEADER.schema]!.length).toBeGreaterThan(1000);
    expect(await codec.decodeChange(a)).toEqual(e);
    // a reader with its own (empty) cache resolves through the store, once per reference
    const reader = jsonCodec({ store: m.store });
    const x = (await reader.decodeChange(a))!;
    const y = (await reader.decodeChange(b))!;
    expect(x).toEqual(e);
    expect(y.schema).toBe(x.schema);
  });

  it('reads records with the whole schema inline, with or without a store (a topic may hold both kinds)', async () => {
    const inline = await jsonCodec().encodeChange(e);
    expect(await jsonCodec({ store: memoryStore().store }).decodeChange(inline)).toEqual(e);
    expect(await jsonCodec().decodeChange(inline)).toEqual(e);
  });

  it('writes inline when asked to, even with a store', async () => {
    const m = memoryStore();
    const r = await jsonCodec({ store: m.store, inline: true }).encodeChange(e);
    expect(m.puts()).toBe(0);
    expect(JSON.parse(r.headers[HEADER.schema]!)).toEqual(JSON.parse(JSON.stringify(pgAllTypes)));
  });

  it('refuses a reference it cannot resolve, and a record without either header, as poison', async () => {
    const m = memoryStore();
    const r = await jsonCodec({ store: m.store }).encodeChange(e);
    await expect(jsonCodec().decodeChange(r)).rejects.toBeInstanceOf(PoisonRecordError);
    const unknown = { ...r, headers: { ...r.headers, [HEADER.schemaRef]: 'nope' } };
    await expect(jsonCodec({ store: m.store }).decodeChange(unknown)).rejects.toThrow(/no schema nope/);
    const bare = { ...r, headers: { [HEADER.position]: r.headers[HEADER.position]! } };
    await expect(jsonCodec({ store: m.store }).decodeChange(bare)).rejects.toThrow(/cdc.schema or cdc.schema.ref/);
  });
});
