import type { Logger } from 'pino';
import type { ChangeEvent, TransactionEvent } from '../schemas/change-event.js';
import type { SourcePosition } from '../schemas/position.js';

/** What a source hands to the pipeline, in source log order. */
export type SourceRecord =
  | { type: 'change'; event: ChangeEvent }
  | { type: 'transaction'; event: TransactionEvent }
  /** Keeps the slot / offset moving when captured tables are idle; published to the heartbeat topic. */
  | { type: 'heartbeat'; position: SourcePosition; ts_ms: number };

export interface SourceBatch {
  /** Records in source log order. May be empty (a pure checkpoint advance). */
  records: SourceRecord[];
  /**
   * Resume point that covers every record of this batch and all earlier ones, or null when the
   * batch ends mid-transaction and the source must not advance yet. Once `publish` resolves the
   * connector may confirm this position to its server (slot flush LSN, stored GTID set).
   */
  checkpoint: SourcePosition | null;
}

export interface SourceContext {
  /**
   * Publishes a batch to Kafka. Resolves only when Kafka acknowledged every record (acks=all,
   * idempotent producer); rejects if it could not. This is the back-pressure point: a connector
   * must await it before reading further from its server, so memory stays bounded however large
   * a source transaction is.
   */
  publish(batch: SourceBatch): Promise<void>;
  /**
   * The last checkpoint the pipeline stored for this source (with the events it covers), or null
   * on first start. PostgreSQL resumes from its slot and may ignore it; MySQL resumes from it.
   */
  loadCheckpoint(): Promise<SourcePosition | null>;
  log: Logger;
  /** Aborted when the pipeline stops; `run` must then return promptly. */
  signal: AbortSignal;
}

/**
 * A change-data-capture source (Debezium's `ChangeEventSource`, PeerDB's `CDCPullConnector`).
 *
 * Contract:
 * - `validate` may be called any number of times and changes nothing on the server except
 *   reading its settings. It throws `ConfigError` with one line per misconfigured server setting,
 *   saying which setting to change.
 * - `run` is called once per instance. It creates what it needs (slot, publication, heartbeat
 *   table) idempotently, streams records to `ctx.publish` in source commit order, and confirms a
 *   position to the server only after `publish` resolved for a batch whose checkpoint covers it.
 *   After a crash (kill -9) a new instance resumes from the last confirmed position: nothing is
 *   lost; records after it may be published again, and every such duplicate carries the same
 *   `position` as its first copy, so consumers can drop it.
 * - `run` resolves when `ctx.signal` aborts, rejects with a non-retriable `CdcError` on a
 *   permanent failure, and retries transient failures (server restarts) itself.
 * - `close` is idempotent and releases connections; it does not drop slots or publications.
 */
export interface SourceConnector {
  readonly name: string;
  readonly kind: 'postgres' | 'mysql';
  validate(): Promise<void>;
  run(ctx: SourceContext): Promise<void>;
  close(): Promise<void>;
}
