import { type SinkConfig, urlKind } from '../config/schema.js';
import type { TableId } from '../schemas/table-schema.js';
import type { QualifiedName } from './dialect.js';

function urlDatabase(url: string): string | null {
  try {
    const db = decodeURIComponent(new URL(url.replace(/^mariadb:/i, 'mysql:')).pathname.replace(/^\//, ''));
    return db === '' ? null : db;
  } catch {
    return null;
  }
}

/**
 * Where a source table lands on a sink's replica (the one rule; verification uses it too):
 * - PostgreSQL replica: schema `targetSchema`, else the source's schema (PostgreSQL) or database
 *   (MySQL), inside the URL's database.
 * - MySQL replica: database `targetSchema`, else the source's database (MySQL source); for a
 *   PostgreSQL source the URL's database (else the source database's name), with `_<schema>`
 *   appended for schemas other than `public` so two schemas' tables never meet.
 */
export function replicaTableName(cfg: Pick<SinkConfig, 'url' | 'targetSchema'>, id: TableId): QualifiedName {
  if (urlKind(cfg.url) === 'postgres') return { schema: cfg.targetSchema ?? id.schema ?? id.db, table: id.table };
  if (cfg.targetSchema !== undefined) return { schema: cfg.targetSchema, table: id.table };
  if (id.schema === null) return { schema: id.db, table: id.table };
  const base = urlDatabase(cfg.url) ?? id.db;
  return { schema: id.schema === 'public' ? base : `${base}_${id.schema}`, table: id.table };
}
