import pg from 'pg';
import { pgError } from './errors.js';
import { RAW_TYPES, REPLICATION_SESSION_OPTIONS } from './replication-stream.js';

export { endClient } from './replication-stream.js';
import type { PgTypeInfo } from './type-map.js';

/**
 * A normal (non-replication) connection for catalog reads, setup and heartbeats. Values come back
 * as raw text (no global type parsers); the session prints values like the walsender does.
 */
export async function openSql(url: string, applicationName: string, connectTimeoutMs = 10_000, queryTimeoutMs?: number): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: url,
    application_name: applicationName,
    options: REPLICATION_SESSION_OPTIONS,
    connectionTimeoutMillis: connectTimeoutMs,
    keepAlive: true,
    types: RAW_TYPES,
    ...(queryTimeoutMs === undefined ? {} : { query_timeout: queryTimeoutMs }),
  } as pg.ClientConfig);
  client.on('error', () => undefined); // surfaced by the next query
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw pgError(err, 'connecting to the source database');
  }
  return client;
}

export type Row = Record<string, string | null>;

export async function sql(client: pg.Client, text: string, params: unknown[] = [], what = 'query'): Promise<Row[]> {
  try {
    const res = await client.query({ text, values: params, types: RAW_TYPES });
    return res.rows as Row[];
  } catch (err) {
    throw pgError(err, what);
  }
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** `schema.table` with both parts quoted. */
export function qualified(schema: string, table: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(table)}`;
}

/** Splits 'schema.table' (each part optionally double-quoted); a bare name is in `public`. */
export function splitQualified(name: string): { schema: string; table: string } {
  const parts: string[] = [];
  let i = 0;
  while (i < name.length) {
    if (name[i] === '"') {
      let s = '';
      i++;
      while (i < name.length) {
        if (name[i] === '"' && name[i + 1] === '"') {
          s += '"';
          i += 2;
        } else if (name[i] === '"') {
          i++;
          break;
        } else s += name[i++];
      }
      parts.push(s);
    } else {
      const dot = name.indexOf('.', i);
      const end = dot < 0 ? name.length : dot;
      parts.push(name.slice(i, end));
      i = end;
    }
    if (name[i] === '.') i++;
  }
  if (parts.length === 1) return { schema: 'public', table: parts[0]! };
  if (parts.length === 2) return { schema: parts[0]!, table: parts[1]! };
  throw new Error(`expected schema.table, got ${name}`);
}

const TYPE_QUERY = `
select t.oid::int8::text as oid, n.nspname, t.typname, t.typtype, t.typcategory, t.typelem::int8::text as typelem,
       t.typbasetype::int8::text as typbasetype, t.typtypmod::text as typtypmod, t.typdelim,
       case when t.typtype = 'e'
            then (select json_agg(e.enumlabel order by e.enumsortorder)::text from pg_enum e where e.enumtypid = t.oid) end as labels
  from pg_type t join pg_namespace n on n.oid = t.typnamespace
 where t.oid = any($1::oid[])`;

/** pg_type facts by OID, loaded on demand with everything they refer to (elements, domain bases). */
export class TypeCache {
  private readonly byOid = new Map<number, PgTypeInfo>();

  get(oid: number): PgTypeInfo | undefined {
    return this.byOid.get(oid);
  }

  /** Forgets user-defined types so the next `ensure` reloads them (enum labels may have changed). */
  forget(oids: Iterable<number>): void {
    for (const o of oids) this.byOid.delete(o);
  }

  async ensure(client: pg.Client, oids: Iterable<number>): Promise<void> {
    let missing = [...new Set(oids)].filter((o) => !this.byOid.has(o));
    for (let round = 0; missing.length > 0 && round < 10; round++) {
      const rows = await sql(client, TYPE_QUERY, [missing], 'reading pg_type');
      const next: number[] = [];
      for (const r of rows) {
        const info: PgTypeInfo = {
          oid: Number(r.oid),
          namespace: r.nspname ?? '',
          name: r.typname ?? '',
          typtype: r.typtype ?? 'b',
          category: r.typcategory ?? 'U',
          elem: Number(r.typelem ?? 0),
          baseType: Number(r.typbasetype ?? 0),
          typmod: Number(r.typtypmod ?? -1),
          delim: r.typdelim ?? ',',
          labels: r.labels ? (JSON.parse(r.labels) as string[]) : null,
        };
        this.byOid.set(info.oid, info);
        for (const ref of [info.elem, info.baseType]) if (ref !== 0 && !this.byOid.has(ref)) next.push(ref);
      }
      missing = next;
    }
  }
}

/** What the catalog says about a relation now (the Relation message has no nullability or primary key). */
export interface RelationFacts {
  exists: boolean;
  notNull: Set<string>;
  primaryKey: string[];
  /**
   * Column defaults as PostgreSQL prints them (`0`, `'x'::text`, `now()`). A sink needs them:
   * `ADD COLUMN ... DEFAULT 0` fills existing rows without writing a single row change.
   */
  defaults: Map<string, string>;
}

export async function relationFacts(client: pg.Client, relid: number): Promise<RelationFacts> {
  const cols = await sql(
    client,
    `select a.attname, a.attnotnull::text as attnotnull, pg_get_expr(d.adbin, d.adrelid) as def
       from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
      where a.attrelid = $1::oid and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''`,
    [relid],
    'reading table columns',
  );
  const pk = await sql(
    client,
    `select a.attname from pg_index i cross join lateral unnest(i.indkey) with ordinality as k(attnum, ord)
       join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
      where i.indrelid = $1::oid and i.indisprimary order by k.ord`,
    [relid],
    'reading the primary key',
  );
  return {
    exists: cols.length > 0,
    notNull: new Set(cols.filter((r) => r.attnotnull === 'true').map((r) => r.attname ?? '')),
    primaryKey: pk.map((r) => r.attname ?? ''),
    defaults: new Map(cols.filter((r) => r.def !== null && r.def !== undefined).map((r) => [r.attname ?? '', r.def!])),
  };
}

/** format_type() of each (oid, typmod): the source's own type text for TableSchema.sourceType. */
export async function formatTypes(client: pg.Client, cols: { typeOid: number; typmod: number }[]): Promise<string[]> {
  if (cols.length === 0) return [];
  const rows = await sql(
    client,
    `select format_type(t.o, t.m) as f from unnest($1::oid[], $2::int4[]) with ordinality as t(o, m, ord) order by t.ord`,
    [cols.map((c) => c.typeOid), cols.map((c) => c.typmod)],
    'formatting column types',
  );
  return rows.map((r) => r.f ?? 'unknown');
}
