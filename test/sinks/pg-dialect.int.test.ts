import { createHash } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Binding } from '../../sinks/dialect.js';
import { columnsOf, postgresDialect } from '../../sinks/postgres/dialect.js';
import { env, uniq } from '../helpers.js';

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

// The sink reads the replica's versions and tombstones of every batch's keys. Those reads must
// cost O(batch), whatever the planner believes about the tables: planned as joins, they hashed a
// whole replica table, or filtered every tombstone of a table against the whole key list
// (O(tombstones x keys): 1.3 s per batch at 8,000 tombstones), when statistics were stale.
describe('PostgreSQL sink reads probe the key index once per key', () => {
  const c = new pg.Client({ connectionString: env.pgReplica });
  const schema = uniq('plan');
  const d = postgresDialect();
  const key: Binding[] = [{ source: { name: 'id', type: { kind: 'int', bits: 32 }, nullable: false, sourceType: 'integer' }, target: { name: 'id', type: 'integer', nullable: false, charset: null, collation: null } }];

  beforeAll(async () => {
    await c.connect();
    for (const q of d.metaDdl(schema)) await c.query(q.text);
    await c.query(`CREATE TABLE ${schema}.t (id integer PRIMARY KEY, v text, _cdc_ts bigint NOT NULL DEFAULT 0, _cdc_origin text COLLATE "C" NOT NULL DEFAULT '', _cdc_order text COLLATE "C" NOT NULL DEFAULT '')`);
    // Statistics taken while the tables were empty, then many rows: what a sink's first minutes look like.
    await c.query(`ANALYZE ${schema}.t; ANALYZE ${schema}.tombstones`);
    await c.query(`INSERT INTO ${schema}.t (id, v) SELECT g, 'x' FROM generate_series(1, 20000) g`);
    await c.query(`INSERT INTO ${schema}.tombstones (tbl, key_hash, key_text, ts, origin, ord) SELECT 'tb', md5(g::text), g::text, 1, 'o', 'r' FROM generate_series(1, 8000) g`);
  });
  afterAll(async () => {
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
  });

  const plan = async (q: { text: string; params: unknown[] }) => {
    const r = await c.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) ${q.text}`, q.params);
    return r.rows.map((x) => x['QUERY PLAN']).join('\n');
  };

  it('versions and tombstones of 1,000 keys: index probes, no scan of either table', async () => {
    const ids = Array.from({ length: 1000 }, (_, i) => [String(1 + i * 17)]);
    const hashes = Array.from({ length: 1000 }, (_, i) => createHash('md5').update(String(1 + i * 5)).digest('hex'));
    const text = await plan(d.readLocalState({ schema, table: 't' }, key, ids, schema, 'tb', hashes));
    expect(text).not.toMatch(/Seq Scan|Hash Join|Rows Removed by (Join )?Filter/);
    expect(text).toMatch(/Index Scan using t_pkey/);
    expect(text).toMatch(/Index Cond: \(\(tbl = .*\) AND \(key_hash = h\.k\)\)/);
    const read = d.readLocalState({ schema, table: 't' }, key, ids, schema, 'tb', hashes);
    const r = await c.query(read.text, read.params);
    expect(r.rows.filter((x) => Number(x.src) === 0)).toHaveLength(1000);
    expect(r.rows.filter((x) => Number(x.src) === 1)).toHaveLength(1000);
  });

  it('tombstone reads and deletes probe too', async () => {
    const hashes = Array.from({ length: 500 }, (_, i) => createHash('md5').update(String(1 + i)).digest('hex'));
    expect(await plan(d.readTombstones(schema, 'tb', hashes))).not.toMatch(/Seq Scan|Rows Removed by (Join )?Filter/);
    const del = d.deleteTombstones(schema, 'tb', hashes);
    await c.query('BEGIN');
    try {
      expect(await plan(del)).not.toMatch(/Seq Scan|Rows Removed by (Join )?Filter/);
    } finally {
      await c.query('ROLLBACK');
    }
    expect((await c.query(del.text, del.params)).rowCount).toBe(500);
  });
});
