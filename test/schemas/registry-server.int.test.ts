// The registry server infra/ runs: a dedicated instance (the shared one is never restarted by a
// test), its Confluent-compatible API, and schema ids that survive a restart (H2 file storage)
// and a kill -9.
import { afterAll, describe, expect, it } from 'vitest';
import { registryServer } from '../../infra/registry.js';
import { httpSchemaRegistry } from '../../pipeline/schema-registry.js';
import { envInt } from '../../infra/env.js';
import { avroCodec } from '../../schemas/avro/codec.js';
import { changeEvent, pgAllTypes, pgRows } from './fixtures.js';

const server = registryServer({ name: 'registry-test', port: envInt('CDC_REGISTRY_TEST_PORT', 18099), storage: 'file' });

afterAll(async () => {
  await server.destroy();
});

describe('registry server (Apicurio, Confluent-compatible API)', () => {
  it('keeps subjects, versions and ids across a clean restart and a kill -9; a codec waits out the outage', async () => {
    let t0 = performance.now();
    await server.start();
    const firstStartS = (performance.now() - t0) / 1000;
    const reg = httpSchemaRegistry({ url: server.url, retry: { maxAttempts: 3 } });
    const schema = (n: number) => JSON.stringify({ type: 'record', name: 'R', namespace: 'restart.check', fields: Array.from({ length: n }, (_, i) => ({ name: `f${i}`, type: ['null', 'string'], default: null })) });
    await reg.setCompatibility('check-value', 'BACKWARD');
    const id1 = await reg.register('check-value', schema(1));
    const id2 = await reg.register('check-value', schema(2));
    expect(id2).not.toBe(id1);

    await server.stop();
    t0 = performance.now();
    await server.start();
    const restartS = (performance.now() - t0) / 1000;
    expect(await reg.versions('check-value')).toEqual([1, 2]);
    expect(await reg.schemaById(id1)).toBe(schema(1));
    expect((await reg.lookup('check-value', schema(2)))?.id).toBe(id2);
    expect(await reg.getCompatibility('check-value')).toBe('BACKWARD');

    // kill -9 while a source registers a new table version: the codec keeps retrying (the
    // publisher would wait, the source position would not move) and goes on once it is back.
    await server.kill9();
    const codec = avroCodec({ registry: httpSchemaRegistry({ url: server.url, retry: { initialDelayMs: 200, maxDelayMs: 2000, maxAttempts: 100 } }), topicOf: () => 'fault.pg1.shop.public.all_types', transactionTopicOf: () => 'fault.tx' });
    const event = changeEvent(pgAllTypes, 'c', null, pgRows[0]!);
    let settled = false;
    const encoding = codec.encodeChange(event).finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 1500));
    expect(settled).toBe(false);
    await server.start();
    const rec = await encoding;
    expect(await codec.decodeChange(rec)).toEqual(event);
    expect(await reg.schemaById(id2)).toBe(schema(2));
    // A narrowing is still refused after the restarts (the subject's level survived).
    expect((await reg.testCompatibility('check-value', JSON.stringify({ type: 'record', name: 'R', namespace: 'restart.check', fields: [{ name: 'f0', type: 'int' }] }))).compatible).toBe(false);
    // Start times go to the log, not into assertions (the machine is shared).
    console.info(`registry-test: first start ${firstStartS.toFixed(1)} s, restart ${restartS.toFixed(1)} s`);
  });
});
