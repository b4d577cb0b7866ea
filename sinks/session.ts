import type { SqlQuery } from './dialect.js';

export interface SqlResult {
  rows: Record<string, unknown>[];
  /** Rows inserted/updated/deleted (MySQL: affectedRows; PostgreSQL: rowCount). */
  affected: number;
}

/**
 * One replica connection, checked out of the pool. Errors come back already mapped to the sink's
 * classes (dialect folder's errors.ts).
 */
export interface SqlSession {
  query(q: SqlQuery | string): Promise<SqlResult>;
  /** Back to the pool; `destroy` drops the connection instead (after an error mid-transaction). */
  release(destroy?: boolean): void;
  /** Resolves when the connection ends or fails (a session-level lock is then gone). */
  readonly closed: Promise<void>;
}

export interface SqlPool {
  session(): Promise<SqlSession>;
  /** Server description for logs and dialect choices, e.g. `10.11.19-MariaDB`. */
  serverVersion(): Promise<string>;
  end(): Promise<void>;
}
