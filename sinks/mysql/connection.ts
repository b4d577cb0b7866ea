import mysql from 'mysql2/promise';
import { redactUrl } from '../../util/redact.js';
import type { Logger } from '../../util/log.js';
import type { SqlPool, SqlResult, SqlSession } from '../session.js';
import { mysqlQuote } from './dialect.js';
import { mapMysqlError } from './errors.js';

/**
 * Session settings of every replica connection: strict mode (a value MySQL would silently change
 * is an error, so it reaches the dead-letter topic instead of the replica), no auto-increment on
 * 0, UTC, READ COMMITTED (each statement sees what other workers committed, after the table lock),
 * and no foreign-key checks (replicated rows of parallel partitions arrive in any table order;
 * the source enforced them).
 */
const SESSION = [
  `SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,NO_AUTO_VALUE_ON_ZERO,ERROR_FOR_DIVISION_BY_ZERO'`,
  `SET SESSION time_zone = '+00:00'`,
  `SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED`,
  `SET SESSION foreign_key_checks = 0`,
];

/**
 * `database`: selected on every connection (created if absent). MariaDB refuses a multi-table
 * DELETE joined with JSON_TABLE while no database is selected ("No database selected").
 */
export function mysqlPool(url: string, o: { max: number; log: Logger; database: string; initSql?: string[] }): SqlPool {
  const pool = mysql.createPool({
    uri: url.replace(/^mariadb:/i, 'mysql:'),
    connectionLimit: o.max,
    charset: 'utf8mb4',
    timezone: 'Z',
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    connectTimeout: 5_000,
    enableKeepAlive: true,
    maxIdle: o.max,
    idleTimeout: 30_000,
    // Statements are prepared server-side; a few per table and shape, bounded per connection.
    maxPreparedStatements: 256,
  });
  pool.on('connection', (conn) => {
    // Errors of idle connections would otherwise crash the process.
    (conn as unknown as { on(ev: string, f: (e: Error) => void): void }).on('error', (err) => o.log.debug({ err: err.message }, 'replica connection failed'));
  });
  const ready = new WeakSet<object>();

  return {
    async session(): Promise<SqlSession> {
      let conn: mysql.PoolConnection;
      try {
        conn = await pool.getConnection();
      } catch (err) {
        throw mapMysqlError(err, `connect to ${redactUrl(url)}`);
      }
      const raw = conn.connection as unknown as { on(ev: string, f: () => void): void; off(ev: string, f: () => void): void };
      let resolveClosed!: () => void;
      const closed = new Promise<void>((r) => (resolveClosed = r));
      const onEnd = () => resolveClosed();
      raw.on('error', onEnd);
      raw.on('end', onEnd);
      let done = false;
      try {
        if (!ready.has(conn.connection)) {
          for (const s of SESSION) await conn.query(s);
          await conn.query(`CREATE DATABASE IF NOT EXISTS ${mysqlQuote(o.database)} CHARACTER SET utf8mb4`);
          await conn.query(`USE ${mysqlQuote(o.database)}`);
          // sinks[].initSql (e.g. a mesh's SET SESSION server_id): a failure fails the session.
          for (const s of o.initSql ?? []) await conn.query(s);
          ready.add(conn.connection);
        }
      } catch (err) {
        conn.destroy();
        throw mapMysqlError(err, 'replica session setup');
      }
      return {
        closed,
        async query(qry): Promise<SqlResult> {
          try {
            const [res] =
              typeof qry === 'string' || qry.params.length === 0
                ? await conn.query(typeof qry === 'string' ? qry : qry.text)
                : await conn.execute(qry.text, qry.params as (string | number | null)[]);
            if (Array.isArray(res)) return { rows: res as Record<string, unknown>[], affected: 0 };
            return { rows: [], affected: (res as mysql.ResultSetHeader).affectedRows ?? 0 };
          } catch (err) {
            throw mapMysqlError(err, 'replica');
          }
        },
        release(destroy = false) {
          if (done) return;
          done = true;
          raw.off('error', onEnd);
          raw.off('end', onEnd);
          if (destroy) conn.destroy();
          else conn.release();
        },
      };
    },
    async serverVersion() {
      try {
        const [rows] = await pool.query('SELECT VERSION() AS v');
        return String((rows as { v: string }[])[0]?.v);
      } catch (err) {
        throw mapMysqlError(err, `connect to ${redactUrl(url)}`);
      }
    },
    async end() {
      await pool.end().catch(() => undefined);
    },
  };
}
