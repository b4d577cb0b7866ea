import type { ChangeEvent, TransactionEvent } from '../change-event.js';

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
  encodeTransaction(t: TransactionEvent): Promise<EncodedRecord>;
  decodeTransaction(r: EncodedRecord): Promise<TransactionEvent>;
}

/** Header names our records carry beside the Debezium envelope. */
export const HEADER = {
  /** TableSchema JSON of the event (JSON codec). */
  schema: 'cdc.schema',
  /** Encoded SourcePosition. */
  position: 'cdc.position',
} as const;
