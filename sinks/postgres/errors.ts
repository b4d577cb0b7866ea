import { CdcError } from '../../schemas/errors.js';
import { DataError, StaleSchemaError, transient } from '../errors.js';

const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);

/**
 * node-postgres errors → the sink's error classes, by SQLSTATE (Debezium's
 * `PostgresErrorHandler`): connection loss, shutdown, deadlock and serialization failures are
 * retriable; data and constraint errors mark a poison change; class 28 (auth) and the rest are
 * permanent.
 */
export function mapPgError(err: unknown, what: string): Error {
  if (err instanceof CdcError) return err;
  const e = err as { code?: string; message?: string };
  const code = e.code ?? '';
  const msg = `${what}: ${e.message ?? String(err)}`;
  if (NETWORK.has(code) || /Connection terminated|connection timeout|Client has encountered a connection error|terminating connection|not queryable/i.test(e.message ?? '')) {
    return transient(msg, 'REPLICA_UNAVAILABLE', err);
  }
  if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code.startsWith('53')) return transient(msg, 'REPLICA_UNAVAILABLE', err);
  if (code === '40001' || code === '40P01' || code === '55P03') return transient(msg, 'CONTENTION', err);
  if (code === '42703' || code === '42P01' || code === '3F000') return new StaleSchemaError(msg, err);
  if (code.startsWith('22') || code.startsWith('23') || code === '42804' || code === '21000' || code === '2202E' || code === '42846') {
    return new DataError(msg, code, err);
  }
  if (code.startsWith('28')) return new CdcError(`${msg} (check the sink URL's user and password)`, { retriable: false, code: 'AUTH', cause: err });
  return new CdcError(msg, { retriable: false, code: code === '' ? 'REPLICA' : `PG_${code}`, cause: err });
}
