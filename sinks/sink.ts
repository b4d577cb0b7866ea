import type { ChangeEvent } from '../schemas/change-event.js';

/**
 * Where a change came from, opaque to the sink: the pipeline uses it to find the original record
 * when the sink dead-letters a change. (Topic/partition/offset, but no Kafka types.)
 */
export interface RecordRef {
  topic: string;
  partition: number;
  offset: string;
}

/** One change to apply, with the record it came from. */
export interface SinkChange {
  event: ChangeEvent;
  ref: RecordRef;
}

/**
 * The consumed position a batch advances, stored in the replica in the same database transaction
 * as the rows (exactly-once effect). `expected` is the stored `next_offset` the consumer started
 * from (null when none was stored): if the replica holds another value, someone else applied this
 * partition meanwhile (a zombie after a rebalance) and the batch is refused with {@link OffsetFenceError}.
 */
export interface OffsetAdvance {
  topic: string;
  partition: number;
  expected: string | null;
  next: string;
}

/** A change the sink can never apply, with the reason; the pipeline sends it to the dead-letter topic. */
export interface DeadLetter {
  ref: RecordRef;
  reason: string;
  /** Short machine-readable class: POISON, TYPE_MISMATCH, CONSTRAINT, NAME, ... */
  code: string;
}

export interface ApplyHooks {
  /**
   * Called inside the replica transaction, before it commits, with the changes that cannot be
   * applied. Must resolve only once they are durably stored (Kafka acks), so a crash after the
   * commit cannot lose them; a crash before the commit replays them (at-least-once in the DLQ).
   */
  deadLetter(items: DeadLetter[]): Promise<void>;
}

export interface ApplyResult {
  /** Row operations written to the replica (after per-key dedup). */
  written: number;
  /** Changes superseded inside the batch or refused by conflict resolution. */
  skipped: number;
  conflicts: number;
  deadLettered: number;
}

/**
 * A group of changes applied in one replica transaction, with the offsets it advances.
 * Changes are in delivery order: one partition's order (key mode) or source commit order
 * (transaction mode).
 */
export interface SinkBatch {
  changes: SinkChange[];
  offsets: OffsetAdvance[];
  /**
   * Key mode: throw OldRowPendingError, writing nothing, when a key change with unchanged columns
   * finds neither its old row nor its new row nor a newer delete of the old key on the replica (the
   * old row's changes are in a partition not applied yet). Without it the new row is written
   * without those columns. @defaultValue false
   */
  waitForOldRows?: boolean;
}

/**
 * A replica transaction that stays open across several `apply` calls, so a source transaction
 * larger than memory can be applied atomically in chunks (transaction mode).
 */
export interface SinkTransaction {
  /** Applies more changes inside the open transaction. */
  apply(changes: SinkChange[]): Promise<void>;
  /** Stores the offsets (fenced), hands dead letters to the hook, and commits. */
  commit(offsets: OffsetAdvance[]): Promise<ApplyResult>;
  /** Abandons everything applied since `begin`. Idempotent. */
  rollback(): Promise<void>;
}

/** An exclusive lease held through a replica session (transaction mode's single active consumer). */
export interface Lease {
  /** Resolves (never rejects) when the lease is lost: the session holding it died. */
  readonly lost: Promise<void>;
  release(): Promise<void>;
}

/**
 * A replica database that change events are applied to (Debezium's JDBC sink task, PeerDB's
 * `CDCSyncConnector`).
 *
 * Contract:
 * - `start` connects and creates the sink's own tables (offsets, tombstones, conflicts) when
 *   absent; idempotent. Replica tables are created and altered lazily, from the schema each event
 *   carries, before the data transaction that needs them.
 * - `apply(batch)` is idempotent and atomic: every row operation of the batch and the new offsets
 *   commit in one replica transaction, or nothing does. Applying the same batch twice (a replay
 *   after a crash) changes nothing the second time: the offset fence refuses it, and with
 *   versioned conflict resolution every row operation carries its source version, so an older or
 *   equal version never overwrites a newer one.
 * - Within a batch, changes to one key take effect in order; the result equals applying the
 *   changes one by one (per-key dedup keeps the latest version, a key change is delete + insert,
 *   unchanged-TOAST placeholders keep the replica's value).
 * - A change that can never be applied (type mismatch, constraint violation, a name the replica
 *   refuses) is handed to `hooks.deadLetter` before the commit and the batch goes on without it.
 * - Transient failures (replica down, deadlock, serialization failure) reject with a retriable
 *   `CdcError` after rolling back; the caller retries the same batch.
 * - `storedOffsets` returns the `next_offset` stored for each partition (absent: none stored).
 * - `close` is idempotent.
 */
export interface Sink {
  readonly name: string;
  readonly kind: 'postgres' | 'mysql';
  start(): Promise<void>;
  storedOffsets(partitions: { topic: string; partition: number }[]): Promise<Map<string, string>>;
  apply(batch: SinkBatch, hooks: ApplyHooks): Promise<ApplyResult>;
  /** Opens a replica transaction for chunked apply (see {@link SinkTransaction}). */
  begin(hooks: ApplyHooks): Promise<SinkTransaction>;
  /** Deletes delete-tombstones older than the configured horizon; returns how many. */
  purgeTombstones(): Promise<number>;
  /** Takes the named lease if free (null if someone else holds it). */
  tryLease(name: string): Promise<Lease | null>;
  close(): Promise<void>;
}

/** Key of a partition in offset maps. */
export function partitionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}
