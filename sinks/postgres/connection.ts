import pg from 'pg';
import { redactUrl } from '../../util/redact.js';
import type { Logger } from '../../util/log.js';
import type { SqlPool, SqlResult, SqlSession } from '../session.js';
import { mapPgError } from './errors.js';

/**
 * Session settings of every replica connection: UTC and ISO output, and
 * `session_replication_role = replica` (as PostgreSQL's own apply worker: replica tables'
 * ordinary triggers and foreign keys do not fire for replicated rows). The last needs superuser;
 * without it the sink goes on with a warning.
 */
const SESSION = [`SET TimeZone = 'UTC'`, `SET DateStyle = 'ISO, YMD'`, `SET IntervalStyle = 'iso_8601'`, `SET extra_float_digits = 3`];

export function postgresPool(url: string, o: { max: number; log: Logger; applicationName?: string; initSql?: string[] }): SqlPool {
  const pool = new pg.Pool({
    connectionString: url,
    max: o.max,
    // PGAPPNAME (libpq's variable) names the sessions when set; an application_name in the URL wins over both.
    application_name: process.env.PGAPPNAME ?? o.applicationName ?? 'cdc-sink',
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
  });
  // An idle client whose server went away emits 'error'; the next checkout reconnects.
  pool.on('error', (err) => o.log.debug({ err: err.message }, 'idle replica connection failed'));
  const ready = new WeakSet<pg.PoolClient>();
  let warnedRole = false;

  async function init(client: pg.PoolClient): Promise<void> {
    for (const s of SESSION) await client.query(s);
    try {
      await client.query(`SET session_replication_role = replica`);
    } catch (err) {
      if (!warnedRole) {
        warnedRole = true;
        o.log.warn({ err: (err as Error).message }, 'cannot SET session_replication_role = replica (needs superuser); replica triggers and foreign keys stay active');
      }
    }
    // sinks[].initSql (e.g. a mesh's replication-origin setup): a failure fails the session.
    for (const s of o.initSql ?? []) await client.query(s);
    ready.add(client);
  }

  return {
    async session(): Promise<SqlSession> {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        throw mapPgError(err, `connect to ${redactUrl(url)}`);
      }
      let done = false;
      let resolveClosed!: () => void;
      const closed = new Promise<void>((r) => (resolveClosed = r));
      const onEnd = () => resolveClosed();
      client.on('error', onEnd);
      client.on('end', onEnd);
      try {
        if (!ready.has(client)) await init(client);
      } catch (err) {
        client.release(true);
        throw mapPgError(err, 'replica session setup');
      }
      return {
        closed,
        async query(qry): Promise<SqlResult> {
          try {
            const r = typeof qry === 'string' ? await client.query(qry) : await client.query(qry.text, qry.params);
            return { rows: r.rows as Record<string, unknown>[], affected: r.rowCount ?? 0 };
          } catch (err) {
            throw mapPgError(err, 'replica');
          }
        },
        release(destroy = false) {
          if (done) return;
          done = true;
          client.off('error', onEnd);
          client.off('end', onEnd);
          client.release(destroy);
        },
      };
    },
    async serverVersion() {
      try {
        const r = await pool.query('SHOW server_version');
        return `PostgreSQL ${String((r.rows[0] as { server_version: string }).server_version)}`;
      } catch (err) {
        throw mapPgError(err, `connect to ${redactUrl(url)}`);
      }
    },
    async end() {
      await pool.end().catch(() => undefined);
    },
  };
}
