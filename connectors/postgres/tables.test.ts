import { describe, expect, it } from 'vitest';
import { splitQualified } from './catalog.js';
import { compileTableFilter } from './tables.js';

describe('table filter', () => {
  it('matches schema.table patterns with wildcards; a bare name is in public', () => {
    const f = compileTableFilter(['public.*', 'sales.order*', 'audit_log'], ['public.tmp_*']);
    expect(f('public', 'users')).toBe(true);
    expect(f('public', 'tmp_x')).toBe(false);
    expect(f('sales', 'orders')).toBe(true);
    expect(f('sales', 'customers')).toBe(false);
    expect(f('other', 'audit_log')).toBe(false);
    expect(compileTableFilter(undefined, [])('any', 'thing')).toBe(true);
    expect(compileTableFilter(undefined, ['*.secret'])('x', 'secret')).toBe(false);
  });

  it('treats dots and regex characters in names literally', () => {
    const f = compileTableFilter(['"we.ird"."a+b"'], []);
    expect(f('we.ird', 'a+b')).toBe(true);
    expect(f('weXird', 'aab')).toBe(false);
  });

  it('splits quoted qualified names', () => {
    expect(splitQualified('users')).toEqual({ schema: 'public', table: 'users' });
    expect(splitQualified('s.t')).toEqual({ schema: 's', table: 't' });
    expect(splitQualified('"My Schema"."tab""le"')).toEqual({ schema: 'My Schema', table: 'tab"le' });
    expect(() => splitQualified('a.b.c')).toThrow();
  });
});
