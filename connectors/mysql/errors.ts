import { CdcError } from '../../schemas/errors.js';

/**
 * mysql2 / server errors mapped onto the one error root (STYLE rule 6): the retrier only reads
 * `retriable`. Network trouble and server restarts are retriable; authentication, privileges and
 * a binlog position the server no longer has are not (retrying cannot fix them).
 */

interface DriverError {
  code?: string;
  errno?: number;
  sqlMessage?: string;
  message?: string;
  fatal?: boolean;
}

const RETRIABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_NORMAL_SHUTDOWN',
  'ER_CONNECTION_KILLED',
  'ER_QUERY_INTERRUPTED',
  'ER_LOCK_WAIT_TIMEOUT',
  'ER_LOCK_DEADLOCK',
  'ER_CLIENT_INTERACTION_TIMEOUT',
]);

/** Server error numbers that are transient (shutdown, killed connection, too many connections). */
const RETRIABLE_ERRNO = new Set([1040, 1053, 1077, 1078, 1079, 1080, 1152, 1153, 1158, 1159, 1160, 1161, 1205, 1213, 1317, 1927, 4031]);

/** ER_MASTER_FATAL_ERROR_READING_BINLOG: the server cannot serve the requested position. */
export const ER_SOURCE_FATAL_ERROR_READING_BINLOG = 1236;
/** MySQL: ER_MASTER_HAS_PURGED_REQUIRED_GTIDS. */
const ER_SOURCE_HAS_PURGED_REQUIRED_GTIDS = 1789;
const ER_ACCESS_DENIED = new Set([1044, 1045, 1142, 1143, 1227, 1370]);

export function mysqlError(err: unknown, context: string): CdcError {
  if (err instanceof CdcError) return err;
  const e = (err ?? {}) as DriverError;
  const text = e.sqlMessage ?? e.message ?? String(err);
  const message = `${context}: ${text}`;
  if (e.errno === ER_SOURCE_FATAL_ERROR_READING_BINLOG || e.errno === ER_SOURCE_HAS_PURGED_REQUIRED_GTIDS) {
    if (/server_uuid\/server_id|same server_?id/i.test(text)) {
      return new CdcError(`${message} (another replica or connector uses this server id: set a distinct sources[].mysql.serverId)`, {
        retriable: false,
        code: 'SERVER_ID_CLASH',
        cause: err,
      });
    }
    return new CdcError(
      `${message} (the stored position is no longer on the server, probably purged binlogs: re-snapshot the source or reset its offset)`,
      { retriable: false, code: 'BINLOG_POSITION_LOST', cause: err },
    );
  }
  if (e.errno !== undefined && ER_ACCESS_DENIED.has(e.errno)) return new CdcError(message, { retriable: false, code: 'ACCESS_DENIED', cause: err });
  const retriable = (e.code !== undefined && RETRIABLE_CODES.has(e.code)) || (e.errno !== undefined && RETRIABLE_ERRNO.has(e.errno));
  return new CdcError(message, { retriable, code: e.code ?? 'MYSQL', cause: err });
}
