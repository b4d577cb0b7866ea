import { CdcError } from '../../schemas/errors.js';
import { DataError, NameError, StaleSchemaError, transient } from '../errors.js';

const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT']);

/** Server went away, shutdown, killed, too many connections, read-only while failing over. */
const UNAVAILABLE = new Set([1040, 1053, 1077, 1078, 1079, 1080, 1152, 1153, 1154, 1155, 1156, 1157, 1158, 1159, 1160, 1161, 1927, 2002, 2003, 2006, 2013, 1290]);
/** Lock wait timeout, deadlock, query interrupted by a concurrent DDL. */
const CONTENTION = new Set([1205, 1213, 1412, 1637]);
/** Unknown column / table / database: another worker changed the table. */
const STALE = new Set([1054, 1146, 1049]);
/** The replica refuses the value or the row: a poison change. */
const DATA = new Set([1048, 1062, 1136, 1264, 1265, 1292, 1366, 1367, 1406, 1411, 1416, 1451, 1452, 1216, 1217, 1364, 1690, 3140, 4025, 4038, 1918, 3819, 1263, 1261, 1262, 1644]);
/** A name MySQL will not take (trailing space, too long, reserved characters). */
const NAME = new Set([1102, 1103, 1166, 1059]);

/** mysql2 errors → the sink's error classes, by MySQL error number (Debezium's MySqlErrorHandler). */
export function mapMysqlError(err: unknown, what: string): Error {
  if (err instanceof CdcError) return err;
  const e = err as { code?: string; errno?: number; message?: string; fatal?: boolean };
  const msg = `${what}: ${e.message ?? String(err)}`;
  const errno = e.errno ?? 0;
  if (NETWORK.has(e.code ?? '') || UNAVAILABLE.has(errno) || /closed state|Connection lost|connection is in closed|Pool is closed/i.test(e.message ?? '')) {
    return transient(msg, 'REPLICA_UNAVAILABLE', err);
  }
  if (CONTENTION.has(errno)) return transient(msg, 'CONTENTION', err);
  if (STALE.has(errno)) return new StaleSchemaError(msg, err);
  if (NAME.has(errno)) return new NameError(msg);
  if (DATA.has(errno)) return new DataError(msg, String(errno), err);
  if (errno === 1045 || errno === 1044 || errno === 1142 || errno === 1143) {
    return new CdcError(`${msg} (check the sink URL's user and its privileges)`, { retriable: false, code: 'AUTH', cause: err });
  }
  return new CdcError(msg, { retriable: false, code: errno ? `MYSQL_${errno}` : 'REPLICA', cause: err });
}
