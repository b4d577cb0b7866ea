import { splitQualified } from './catalog.js';

/**
 * The `tables.include` / `tables.exclude` filter for PostgreSQL: `schema.table` patterns with `*`
 * wildcards (a bare `table` means `public.table`). No include list means every table.
 */
export type TableFilter = (schema: string, table: string) => boolean;

function patternToRegExp(p: string): RegExp {
  const { schema, table } = splitQualified(p);
  const part = (s: string) => s.split('*').map((x) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  return new RegExp(`^${part(schema)}\\u0000${part(table)}$`);
}

export function compileTableFilter(include: string[] | undefined, exclude: string[]): TableFilter {
  const inc = include?.map(patternToRegExp);
  const exc = exclude.map(patternToRegExp);
  return (schema, table) => {
    const name = `${schema}\u0000${table}`;
    if (inc && !inc.some((r) => r.test(name))) return false;
    return !exc.some((r) => r.test(name));
  };
}
