/**
 * Which tables a MySQL source captures: `tables.include` / `tables.exclude` patterns of the form
 * `db.table` with `*` wildcards, matched case-insensitively (table-name case sensitivity depends
 * on the server's lower_case_table_names; a pattern that works on one server should not silently
 * capture nothing on another). System databases are left out unless a pattern names them, and the
 * configured signal table is always in.
 */

const SYSTEM_DBS = new Set(['mysql', 'information_schema', 'performance_schema', 'sys']);

function compile(pattern: string): RegExp {
  const dot = pattern.indexOf('.');
  const [db, table] = dot < 0 ? [pattern, '*'] : [pattern.slice(0, dot), pattern.slice(dot + 1)];
  const part = (p: string) => p.split('*').map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  return new RegExp(`^${part(db)}\\u0000${part(table)}$`, 'is');
}

export interface TableFilter {
  /** Is `db.table` captured? */
  (db: string, table: string): boolean;
  /** Could any table of this database be captured (for DDL on a whole database)? */
  database(db: string): boolean;
}

export function tableFilter(opts: { include?: string[]; exclude: string[]; signalTable?: string }): TableFilter {
  const include = opts.include?.map(compile);
  const exclude = opts.exclude.map(compile);
  const signal = opts.signalTable ? compile(opts.signalTable) : null;
  const explicitDbs = new Set((opts.include ?? []).map((p) => p.split('.')[0]!.toLowerCase()));
  const cache = new Map<string, boolean>();
  const f = ((db: string, table: string): boolean => {
    const key = `${db}\u0000${table}`;
    let hit = cache.get(key);
    if (hit === undefined) {
      if (signal?.test(key)) hit = true;
      else if (SYSTEM_DBS.has(db.toLowerCase()) && !explicitDbs.has(db.toLowerCase())) hit = false;
      else hit = (include === undefined || include.some((r) => r.test(key))) && !exclude.some((r) => r.test(key));
      if (cache.size > 100_000) cache.clear();
      cache.set(key, hit);
    }
    return hit;
  }) as TableFilter;
  f.database = (db: string) => {
    if (signal?.test(`${db}\u0000${opts.signalTable!.split('.').slice(1).join('.')}`)) return true;
    if (SYSTEM_DBS.has(db.toLowerCase()) && !explicitDbs.has(db.toLowerCase())) return false;
    if (include === undefined) return true;
    // A database matches when some include pattern's db part matches it.
    return (opts.include ?? []).some((p) => compile(`${p.split('.')[0]}.*`).test(`${db}\u0000x`));
  };
  return f;
}
