import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { env } from '../helpers.js';
import { columnsOf } from '../../sinks/postgres/dialect.js';

// The sink sends every batch as one text[] literal per column (built by columnsOf, not by pg):
// whatever a cell holds must come back from PostgreSQL exactly.
describe('text[] literals of the PostgreSQL sink', () => {
  const c = new pg.Client({ connectionString: env.pgReplica });
  beforeAll(() => c.connect());
  afterAll(() => c.end());

  it('round-trip quotes, backslashes, braces, commas, blanks, NULL and the word NULL', async () => {
    const values: (string | number | null)[] = ['plain', '', ' ', 'a"b', 'a\\b', '\\"', '"\\', '{x,y}', 'a,b', 'NULL', 'null', null, '\t\n', 'ü€😀', 42, -1.5, "'; drop table x; --"];
    const [lit] = columnsOf(values.map((v) => [v]), 1);
    const r = await c.query<{ v: string | null; i: string }>('SELECT v, i::int AS i FROM unnest($1::text[]) WITH ORDINALITY AS k(v, i) ORDER BY i', [lit]);
    expect(r.rows.map((x) => x.v)).toEqual(values.map((v) => (v === null ? null : String(v))));
  });

  it('keeps rows and columns apart', async () => {
    const cells = [
      ['1', null, 'x'],
      ['2', 'b"', null],
    ];
    const lits = columnsOf(cells, 3);
    const r = await c.query('SELECT a, b, c FROM unnest($1::text[], $2::text[], $3::text[]) AS k(a, b, c)', lits);
    expect(r.rows).toEqual([
      { a: '1', b: null, c: 'x' },
      { a: '2', b: 'b"', c: null },
    ]);
  });
});
