/**
 * The one error root. Everything that can fail at run time is a CdcError or is wrapped in one;
 * the retrier reads only `retriable` (kafkajs `KafkaJSError.retriable`, Debezium's
 * `ErrorHandler.isRetriable`). Driver-specific codes are mapped to it inside each dialect folder.
 */
export class CdcError extends Error {
  readonly retriable: boolean;
  readonly code: string;
  constructor(message: string, opts: { retriable?: boolean; code?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'CdcError';
    this.retriable = opts.retriable ?? false;
    this.code = opts.code ?? 'CDC_ERROR';
  }
}

/** Bad configuration (file or source/replica server settings). Never retriable; exit code 2. */
export class ConfigError extends CdcError {
  /** One line per problem, each naming the field or the server setting to change. */
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('\n'), { retriable: false, code: 'CONFIG' });
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** A record that can never be applied or decoded (goes to the dead-letter topic). */
export class PoisonRecordError extends CdcError {
  constructor(message: string, cause?: unknown) {
    super(message, { retriable: false, code: 'POISON', cause });
    this.name = 'PoisonRecordError';
  }
}

/** Is this error worth retrying? Unknown errors (bugs) are not. */
export function isRetriable(err: unknown): boolean {
  return err instanceof CdcError ? err.retriable : false;
}

/**
 * A permanent failure confined to one table (e.g. a refused schema change). The publisher parks
 * that table's events (they are kept, not dropped) and the other tables keep flowing.
 */
export class TableError extends CdcError {
  /** `db.schema.table` / `db.table`, as `tableName()` prints it. */
  readonly table: string;
  constructor(table: string, message: string, opts: { code?: string; cause?: unknown } = {}) {
    super(message, { retriable: false, code: opts.code ?? 'TABLE', cause: opts.cause });
    this.name = 'TableError';
    this.table = table;
  }
}
