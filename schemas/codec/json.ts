import { type ChangeEvent, type TransactionEvent, eventKey } from '../change-event.js';
import { PoisonRecordError } from '../errors.js';
import { decodePosition, encodePosition } from '../position.js';
import type { TableSchema } from '../table-schema.js';
import { type EncodedRecord, type EventCodec, HEADER, type SchemaStore } from './types.js';

/**
 * JSON encoding. The value is the plain Debezium envelope (what Debezium's JsonConverter writes
 * with `schemas.enable=false`), so existing consumers read it as is; the table schema and the
 * source position travel in headers, where our sinks find them.
 *
 * With a schema store, a record names its schema by reference (`cdc.schema.ref`, ~50 bytes)
 * instead of carrying it (`cdc.schema`, ~2 KB for a 10-column table): smaller records, bigger
 * batches, less to decode. Decoding accepts both kinds, so a topic may hold a mix.
 */
export function jsonCodec(opts: { store?: SchemaStore; inline?: boolean } = {}): EventCodec {
  const store = opts.store;
  /** Whole schemas: without a store, or when asked (the store then only resolves older records' references). */
  const inline = opts.inline === true || store === undefined;
  // Events of one table share one schema object until it changes: serialise it once.
  const schemaText = new WeakMap<TableSchema, string>();
  const parsedSchema = new Map<string, TableSchema>();
  const refs = new WeakMap<TableSchema, string>();

  /** The reference of a schema object, stored on first use (once per table version). */
  const refOf = async (s: TableSchema): Promise<string> => {
    const ref = await store!.put(s);
    refs.set(s, ref);
    return ref;
  };

  /** The record's schema when no lookup is needed: carried whole, or a reference seen before. */
  const knownSchema = (r: EncodedRecord): TableSchema | undefined => {
    const whole = r.headers[HEADER.schema];
    if (whole !== undefined) return parseSchema(whole);
    const ref = r.headers[HEADER.schemaRef];
    return ref === undefined ? undefined : parsedSchema.get(ref);
  };

  const schemaOf = async (r: EncodedRecord): Promise<TableSchema> => {
    const known = knownSchema(r);
    if (known) return known;
    const ref = r.headers[HEADER.schemaRef];
    if (ref === undefined) throw new PoisonRecordError(`record has no ${HEADER.schema} or ${HEADER.schemaRef} header: not written by this pipeline`);
    if (!store) throw new PoisonRecordError(`record refers to schema ${ref} and this reader has no schema store`);
    const s = await store.get(ref);
    parsedSchema.set(ref, s);
    return s;
  };

  const schemaHeader = (s: TableSchema): string => {
    let text = schemaText.get(s);
    if (text === undefined) {
      text = JSON.stringify(s);
      schemaText.set(s, text);
    }
    return text;
  };

  const parseSchema = (text: string): TableSchema => {
    let s = parsedSchema.get(text);
    if (s === undefined) {
      s = JSON.parse(text) as TableSchema;
      if (parsedSchema.size > 10_000) parsedSchema.clear();
      parsedSchema.set(text, s);
    }
    return s;
  };

  /** The event of a record whose schema is known: the parsed envelope itself, with schema and position added (no copy). */
  const envelope = (r: EncodedRecord, schema: TableSchema): ChangeEvent => {
    const position = r.headers[HEADER.position];
    if (position === undefined) throw new PoisonRecordError(`record has no ${HEADER.position} header: not written by this pipeline`);
    let env: ChangeEvent;
    try {
      env = JSON.parse(r.value!.toString('utf8')) as ChangeEvent;
      if (!env || typeof env !== 'object' || !('op' in env) || !('source' in env)) throw new Error('not a change envelope');
      env.schema = schema;
      env.position = decodePosition(position);
    } catch (err) {
      throw new PoisonRecordError(`undecodable JSON change record: ${(err as Error).message}`, err);
    }
    return env;
  };

  return {
    name: 'json',
    ...(store?.close ? { close: () => store.close!() } : {}),
    async encodeChange(e) {
      const key = eventKey(e);
      const envelope = { before: e.before, after: e.after, source: e.source, op: e.op, ts_ms: e.ts_ms, transaction: e.transaction };
      return {
        key: key === null ? null : Buffer.from(JSON.stringify(key)),
        value: Buffer.from(JSON.stringify(envelope)),
        headers: {
          [inline ? HEADER.schema : HEADER.schemaRef]: inline ? schemaHeader(e.schema) : (refs.get(e.schema) ?? (await refOf(e.schema))),
          [HEADER.position]: encodePosition(e.position),
        },
      };
    },
    async decodeChange(r) {
      if (r.value === null) return null;
      return envelope(r, await schemaOf(r));
    },
    decodeCached(r) {
      if (r.value === null) return null;
      const schema = knownSchema(r);
      return schema === undefined ? undefined : envelope(r, schema);
    },
    async encodeTransaction(t) {
      const { position, ...rest } = t;
      return {
        key: Buffer.from(JSON.stringify({ id: t.id })),
        value: Buffer.from(JSON.stringify(rest)),
        headers: { [HEADER.position]: encodePosition(position) },
      };
    },
    async decodeTransaction(r) {
      if (r.value === null) throw new PoisonRecordError('empty transaction record');
      const position = r.headers[HEADER.position];
      if (position === undefined) throw new PoisonRecordError(`transaction record has no ${HEADER.position} header`);
      try {
        return { ...(JSON.parse(r.value.toString('utf8')) as Omit<TransactionEvent, 'position'>), position: decodePosition(position) };
      } catch (err) {
        throw new PoisonRecordError(`undecodable transaction record: ${(err as Error).message}`, err);
      }
    },
  };
}
