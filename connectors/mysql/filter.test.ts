import { describe, expect, it } from 'vitest';
import { tableFilter } from './filter.js';

describe('table filter', () => {
  it('captures everything but system databases by default', () => {
    const f = tableFilter({ exclude: [] });
    expect(f('app', 'users')).toBe(true);
    expect(f('mysql', 'user')).toBe(false);
    expect(f('performance_schema', 'x')).toBe(false);
  });
  it('applies include/exclude db.table patterns with * wildcards, case-insensitively', () => {
    const f = tableFilter({ include: ['app.*', 'shop.order*'], exclude: ['app.tmp_*'] });
    expect(f('app', 'users')).toBe(true);
    expect(f('APP', 'Users')).toBe(true);
    expect(f('app', 'tmp_1')).toBe(false);
    expect(f('shop', 'orders')).toBe(true);
    expect(f('shop', 'items')).toBe(false);
    expect(f('other', 'x')).toBe(false);
    expect(f.database('shop')).toBe(true);
    expect(f.database('other')).toBe(false);
    // dots in names are not wildcards
    expect(tableFilter({ include: ['a.b'], exclude: [] })('a', 'b')).toBe(true);
    expect(tableFilter({ include: ['a.b'], exclude: [] })('aXb', 'b')).toBe(false);
  });
  it('always captures the signal table', () => {
    const f = tableFilter({ include: ['app.*'], exclude: ['ops.*'], signalTable: 'ops.cdc_signal' });
    expect(f('ops', 'cdc_signal')).toBe(true);
    expect(f('ops', 'other')).toBe(false);
    expect(f.database('ops')).toBe(true);
  });
});

describe('default scope', () => {
  it('a URL naming a database captures only that database', async () => {
    const { defaultInclude } = await import('./options.js');
    const f = tableFilter({ include: defaultInclude('mysql://root@127.0.0.1:33306/shop'), exclude: [] });
    expect(f('shop', 'orders')).toBe(true);
    expect(f('other', 'orders')).toBe(false);
    expect(defaultInclude('mysql://root@127.0.0.1:33306')).toBeUndefined();
    expect(defaultInclude('mariadb://root@h/sh%20op')).toEqual(['sh op.*']);
  });
});
