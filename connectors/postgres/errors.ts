import { CdcError } from '../../schemas/errors.js';

/**
 * PostgreSQL and socket errors mapped onto CdcError.retriable (Debezium's
 * PostgresErrorHandler, kafkajs' protocol/error.js): the retrier reads only the flag.
 */

/** SQLSTATEs (or classes, two characters) that a later attempt can get past. */
const RETRIABLE_STATES = new Set([
  '08', // connection exception
  '53', // insufficient resources (too many connections, out of memory, disk full)
  '57P01', // admin_shutdown: server stopped or walsender terminated by pg_terminate_backend
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: starting up / recovering
  '55006', // object_in_use: slot still held by the walsender of a previous (killed) instance
  '55P03', // lock_not_available
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '58000', // system_error (I/O)
  '58030', // io_error
]);

/** Overrides of the table above: these never get better by retrying. */
const PERMANENT_STATES = new Set([
  '28', // invalid authorization: wrong password, no pg_hba entry, no REPLICATION privilege
  '3D000', // database does not exist
  '42501', // insufficient_privilege
  '42704', // undefined_object: slot or publication dropped under us; recreating would lose changes
  '42710', // duplicate_object
  '57P04', // database_dropped
  '58P01', // undefined_file: "requested WAL segment ... has already been removed": the slot lost WAL
  '0A000', // feature_not_supported
  '22023', // invalid_parameter_value (bad plugin option)
  '42601', // syntax_error: our bug
]);

const RETRIABLE_SOCKET = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);

export function isRetriablePgState(sqlState: string): boolean {
  if (PERMANENT_STATES.has(sqlState) || PERMANENT_STATES.has(sqlState.slice(0, 2))) return false;
  return RETRIABLE_STATES.has(sqlState) || RETRIABLE_STATES.has(sqlState.slice(0, 2));
}

interface PgLikeError {
  code?: string;
  message?: string;
  severity?: string;
}

/**
 * Wraps whatever `pg` or the socket threw in a CdcError with the right `retriable` flag.
 * `what` says what we were doing ("START_REPLICATION", "creating the publication").
 */
export function pgError(err: unknown, what: string): CdcError {
  if (err instanceof CdcError) return err;
  const e = (err ?? {}) as PgLikeError;
  const message = e.message ?? String(err);
  const code = typeof e.code === 'string' ? e.code : undefined;
  if (code && /^[0-9A-Z]{5}$/.test(code)) {
    return new CdcError(`${what}: ${message} (SQLSTATE ${code})`, { retriable: isRetriablePgState(code), code: `PG_${code}`, cause: err });
  }
  if (code && RETRIABLE_SOCKET.has(code)) return new CdcError(`${what}: ${message}`, { retriable: true, code, cause: err });
  // node-postgres reports a dropped server connection with these messages and no code.
  if (/Connection terminated|terminating connection|Client has encountered a connection error|timeout expired|socket hang up/i.test(message)) {
    return new CdcError(`${what}: ${message}`, { retriable: true, code: 'PG_CONNECTION_LOST', cause: err });
  }
  return new CdcError(`${what}: ${message}`, { retriable: false, code: 'PG_ERROR', cause: err });
}
