import type { ChangeEvent, TransactionEvent } from '../change-event.js';
import type { TableSchema } from '../table-schema.js';

/** A record ready for Kafka, with no Kafka types in it. */
export interface EncodedRecord {
  key: Buffer | null;
  /** null = tombstone. */
  value: Buffer | null;
  headers: Record<string, string>;
}

/** Turns change events into bytes and back. JSON here; Avro with a registry in `schemas/avro`. */
export interface EventCodec {
  readonly name: 'json' | 'avro';
  encodeChange(e: ChangeEvent): Promise<EncodedRecord>;
  /** Returns null for a tombstone. Throws PoisonRecordError for a record it cannot decode. */
  decodeChange(r: EncodedRecord): Promise<ChangeEvent | null>;
  /**
   * The same, synchronously, when everything the record needs is at hand (its schema already
   * seen); undefined when it is not (call `decodeChange`). Sinks decode every record: an await per
   * record costs as much as parsing it.
   */
  decodeCached?(r: EncodedRecord): ChangeEvent | null | undefined;
  encodeTransaction(t: TransactionEvent): Promise<EncodedRecord>;
  decodeTransaction(r: EncodedRecord): Promise<TransactionEvent>;
  /** Releases connections the codec opened (a schema store's), if any. */
  close?(): Promise<void>;
}

/** Header names our records carry beside the Debezium envelope. */
export const HEADER = {
  /** TableSchema JSON of the event (JSON codec, `kafka.jsonSchemas: inline`). */
  schema: 'cdc.schema',
  /** Reference of the event's TableSchema in the schema topic (JSON codec, `kafka.jsonSchemas: reference`). */
  schemaRef: 'cdc.schema.ref',
  /** Encoded SourcePosition. */
  position: 'cdc.position',
} as const;

/** Table schemas stored once and named by a short reference (see pipeline/schema-store.ts). */
export interface SchemaStore {
  /** Stores the schema if it is not yet stored; resolves, with its reference, once it is durable. */
  put(schema: TableSchema): Promise<string>;
  /** The schema a reference names. Throws PoisonRecordError when the store has none by that name. */
  get(ref: string): Promise<TableSchema>;
  /** Releases the store's connections, if it has any. */
  close?(): Promise<void>;
}
