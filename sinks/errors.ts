import { CdcError, PoisonRecordError } from '../schemas/errors.js';

/**
 * Sink errors. Driver error codes are mapped to these in each dialect folder's errors.ts; the
 * sink reads only the class and `retriable`.
 */

/** A value that cannot be stored in its replica column (type mismatch, out of range). */
export class ValueError extends PoisonRecordError {
  constructor(message: string, cause?: unknown) {
    super(message, cause);
    this.name = 'ValueError';
  }
}

/**
 * The replica refused the data of a statement (type mismatch, constraint violation, value too
 * long): one of the changes in it is poison. The sink isolates which by applying them one by one.
 */
export class DataError extends CdcError {
  readonly sqlCode: string;
  constructor(message: string, sqlCode: string, cause?: unknown) {
    super(message, { retriable: false, code: 'DATA', cause });
    this.name = 'DataError';
    this.sqlCode = sqlCode;
  }
}

/**
 * Key mode: a key change needs the replica's row under its old key, to keep the columns the source
 * did not send (unchanged TOAST values), and that row is not there yet: its insert or last update
 * is in another partition not applied this far. Nothing was written; the consumer tries the batch
 * again a little later (see SinkBatch.waitForOldRows).
 */
export class OldRowPendingError extends CdcError {
  constructor(
    readonly keys: string[],
    /** Offset of the batch's first key change that waits: the changes before it can be applied. */
    readonly offset: string,
  ) {
    super(`a key change waits for the old row of ${keys.length} key(s) (${keys.slice(0, 3).join(', ')}) from another partition`, { retriable: false, code: 'OLD_ROW_PENDING' });
    this.name = 'OldRowPendingError';
  }
}

/**
 * The replica's tables changed under the sink (a column or table another worker dropped or
 * created): refresh the cached table descriptions and retry.
 */
export class StaleSchemaError extends CdcError {
  constructor(message: string, cause?: unknown) {
    super(message, { retriable: true, code: 'STALE_SCHEMA', cause });
    this.name = 'StaleSchemaError';
  }
}

/**
 * The stored offset was not where this worker expected it: another worker applied the partition
 * meanwhile (a zombie after a rebalance). Nothing was committed; the consumer re-reads the stored
 * offsets and seeks there.
 */
export class OffsetFenceError extends CdcError {
  constructor(readonly topic: string, readonly partition: number, expected: string | null) {
    super(`offset of ${topic}[${partition}] moved (expected ${expected ?? 'none'}): another worker applied this partition`, {
      retriable: true,
      code: 'FENCED',
    });
    this.name = 'OffsetFenceError';
  }
}

/** A name the replica cannot hold as given (too long, trailing space...). */
export class NameError extends PoisonRecordError {
  constructor(message: string) {
    super(message);
    this.name = 'NameError';
  }
}

/** Connection-level failure or contention worth retrying (server down, deadlock, serialization). */
export function transient(message: string, code: string, cause?: unknown): CdcError {
  return new CdcError(message, { retriable: true, code, cause });
}
