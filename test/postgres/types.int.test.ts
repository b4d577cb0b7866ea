// Every supported PostgreSQL type, with edge values, from the WAL to Kafka: each value that
// arrives must be the canonical form of exactly what PostgreSQL holds. Checked two ways: against
// literal expectations for the tricky cases, and by handing every value back to PostgreSQL and
// asking whether it equals the stored one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PipelineConfig } from '../../config/schema.js';
import { parseLsn } from '../../connectors/postgres/lsn.js';
import type { ChangeEvent, ColumnValue } from '../../schemas/index.js';
import {
  type Running,
  type TestDb,
  changes,
  collect,
  createTestDb,
  createTopic,
  deleteTopics,
  dropTestDb,
  startSource,
  testConfig,
  topicsOf,
} from './harness.js';

const DDL = `
create type mood as enum ('sad', 'ok', 'happy', 'very "happy", really');
create domain posint as integer check (value > 0);
create domain price as numeric(12,2);
create table types (
  id int primary key,
  i2 int2, i4 int4, i8 int8, n numeric, n2 numeric(12,2), f4 float4, f8 float8, b bool,
  t text, vc varchar(10), c char(5), ba bytea, u uuid, j json, jb jsonb,
  d date, tm time, ttz timetz, ts timestamp, tstz timestamptz, ts3 timestamp(3), iv interval,
  ai int[], at text[], an numeric[], ats timestamptz[], a2 int[][], aj jsonb[], ab bytea[], af float8[],
  e mood, ae mood[], dp posint, dpr price, unk int4range, inet_c inet, bits bit(4), vbits varbit
);
create table blobs (id int primary key, t text, ba bytea);
`;

const BIG_NUMERIC = `${'9'.repeat(1000)}.${'9'.repeat(1000)}`;

const INSERTS = `
insert into types values (1,
  32767, -2147483648, 9223372036854775807, '${BIG_NUMERIC}', -9999999999.99, 'NaN', 'Infinity', true,
  E'日本語 ünïcödé 😀 \\\\ "q" \\n tab\\t', 'abc', 'ab', '\\x00ff10', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
  '{"a": [1, 2.50, "x"],  "b":null}', '{"b": 1, "a": [true, 1.0]}',
  '-infinity', '23:59:59.999999', '12:00:00.000001+05:30', '-infinity', 'infinity', '2026-01-02 03:04:05.1239', '1 year 2 mons 3 days 04:05:06.789',
  '{}', '{"a,b",NULL,"x\\"y","NULL", " sp "}', '{1e-30,NaN,-0.5}', '{"2026-01-02 03:04:05.000001+00",NULL}', '{{1,2},{3,4}}',
  array['{"k": "v"}'::jsonb, '[]'::jsonb], array['\\x'::bytea, '\\x00ff'::bytea], '{NaN,-Infinity,1.5e-300}',
  'very "happy", really', '{sad,happy}', 5, 12.3, '[1,5)', '192.168.0.1/24', B'1010', B'101'
);
insert into types (id, n, f4, f8, d, ts, tstz, tm, iv, a2, e, ai)
  values (2, '1e-30', '-Infinity', '-1.5e-300', '4713-01-01 BC', '0044-03-15 12:00:00.5 BC',
          '1999-12-31 23:59:59.999999+02', '00:00', '-1 days +02:00', '{{{1}},{{2}}}', 'sad', '{-2147483648,2147483647}');
insert into types (id) values (3);
insert into types (id, n, f4, f8, tstz, ts) values (4, '-0.000', 3.4028235e38, 1.7976931348623157e308, '294276-12-31 23:59:59.999999+00', '1970-01-01 00:00:00');
`;

/** PostgreSQL array literal of canonical JSON elements, for handing arrays back to PostgreSQL. */
function pgArray(v: ColumnValue[]): string {
  return `{${v.map((x) => (x === null ? 'NULL' : Array.isArray(x) ? pgArray(x) : `"${String(x).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`)).join(',')}}`;
}

describe('postgres source: types', () => {
  let db: TestDb;
  let cfg: PipelineConfig;
  let src: Running;
  let events: ChangeEvent[];

  beforeAll(async () => {
    db = await createTestDb('t_types');
    await db.q(DDL);
    cfg = testConfig(db);
    // A 1 MB row is over Kafka's default 1 MiB max.message.bytes: this topic is made to take it
    // (the production setting to raise; see docs/postgres-source.md).
    await createTopic(topicsOf(cfg).table({ db: db.name, schema: 'public', table: 'blobs' }), 3, { 'max.message.bytes': String(8 * 1024 * 1024) });
    src = startSource(cfg);
    // Wait until the slot exists so the inserts below are streamed.
    for (let i = 0; i < 100; i++) {
      if ((await db.q(`select 1 from pg_replication_slots where slot_name = $1 and active`, [db.name])).length > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await db.q(INSERTS);
    await db.q(`insert into blobs values (1, repeat('ä', 524288), null)`);
    await db.q(`insert into blobs select 2, null, decode(string_agg(md5(g::text), '' order by g), 'hex') from generate_series(1, 65536) g`);
    const t = topicsOf(cfg);
    const msgs = await collect(
      [t.table({ db: db.name, schema: 'public', table: 'types' }), t.table({ db: db.name, schema: 'public', table: 'blobs' })],
      (m) => m.length >= 6,
    );
    events = await changes(msgs);
  });

  afterAll(async () => {
    await src?.stop();
    await dropTestDb(db);
    if (cfg) await deleteTopics(cfg.name);
  });

  const row = (id: number, table = 'types') => {
    const e = events.find((x) => x.schema.id.table === table && (x.after?.id as number) === id);
    if (!e) throw new Error(`no event for ${table} ${id}`);
    return e.after!;
  };

  it('maps every column to its neutral type', () => {
    const s = events.find((e) => e.schema.id.table === 'types')!.schema;
    const types = Object.fromEntries(s.columns.map((c) => [c.name, c.type]));
    expect(types).toMatchObject({
      i2: { kind: 'int', bits: 16 },
      i8: { kind: 'int', bits: 64 },
      n: { kind: 'decimal' },
      n2: { kind: 'decimal', precision: 12, scale: 2 },
      f4: { kind: 'float', bits: 32 },
      vc: { kind: 'string', length: 10 },
      c: { kind: 'string', length: 5, fixed: true },
      ba: { kind: 'bytes' },
      u: { kind: 'uuid' },
      jb: { kind: 'json' },
      ttz: { kind: 'time', tz: true },
      tstz: { kind: 'timestamp', tz: true },
      ts3: { kind: 'timestamp', tz: false, precision: 3 },
      iv: { kind: 'interval' },
      a2: { kind: 'array', element: { kind: 'int', bits: 32 } },
      e: { kind: 'enum', name: 'mood', values: ['sad', 'ok', 'happy', 'very "happy", really'] },
      ae: { kind: 'array', element: { kind: 'enum' } },
      dp: { kind: 'int', bits: 32 },
      dpr: { kind: 'decimal', precision: 12, scale: 2 },
      unk: { kind: 'unknown' },
      bits: { kind: 'bit', length: 4 },
    });
    expect(s.primaryKey).toEqual(['id']);
    expect(s.columns.find((c) => c.name === 'id')!.nullable).toBe(false);
    expect(s.columns.find((c) => c.name === 'dp')!.sourceType).toBe('posint');
    expect(s.columns.find((c) => c.name === 'n2')!.sourceType).toBe('numeric(12,2)');
  });

  it('gives the exact canonical values for edge cases', () => {
    const r1 = row(1);
    expect(r1).toMatchObject({
      i2: 32767,
      i4: -2147483648,
      i8: '9223372036854775807',
      n: BIG_NUMERIC,
      n2: '-9999999999.99',
      f4: 'NaN',
      f8: 'Infinity',
      b: true,
      t: '日本語 ünïcödé 😀 \\ "q" \n tab\t',
      vc: 'abc',
      c: 'ab   ',
      ba: Buffer.from([0, 255, 16]).toString('base64'),
      u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      j: '{"a": [1, 2.50, "x"],  "b":null}',
      jb: '{"a": [true, 1.0], "b": 1}',
      d: '-infinity',
      tm: '23:59:59.999999',
      ttz: '12:00:00.000001+05:30',
      ts: '-infinity',
      tstz: 'infinity',
      ts3: '2026-01-02T03:04:05.124',
      iv: 'P1Y2M3DT4H5M6.789S',
      ai: [],
      at: ['a,b', null, 'x"y', 'NULL', ' sp '],
      an: ['0.000000000000000000000000000001', 'NaN', '-0.5'],
      ats: ['2026-01-02T03:04:05.000001Z', null],
      a2: [
        [1, 2],
        [3, 4],
      ],
      aj: ['{"k": "v"}', '[]'],
      ab: ['', Buffer.from([0, 255]).toString('base64')],
      af: ['NaN', '-Infinity', 1.5e-300],
      e: 'very "happy", really',
      ae: ['sad', 'happy'],
      dp: 5,
      dpr: '12.30',
      unk: '[1,5)',
      inet_c: '192.168.0.1/24',
      bits: '1010',
      vbits: '101',
    });
    expect(row(2)).toMatchObject({
      n: '0.000000000000000000000000000001',
      f4: '-Infinity',
      f8: -1.5e-300,
      d: '4713-01-01 BC',
      ts: '0044-03-15T12:00:00.5 BC',
      tstz: '1999-12-31T21:59:59.999999Z',
      tm: '00:00:00',
      iv: 'P-1DT2H',
      a2: [[[1]], [[2]]],
      e: 'sad',
      ai: [-2147483648, 2147483647],
    });
    const r3 = row(3);
    expect(Object.entries(r3).filter(([k]) => k !== 'id').every(([, v]) => v === null)).toBe(true);
    expect(row(4)).toMatchObject({ n: '0.000', f4: 3.4028235e38, f8: 1.7976931348623157e308, tstz: '294276-12-31T23:59:59.999999Z', ts: '1970-01-01T00:00:00' });
  });

  it('delivers 1 MB text and bytea intact', async () => {
    expect(row(1, 'blobs').t).toBe('ä'.repeat(524288));
    const [expected] = await db.q(`select encode(ba, 'base64') as b from blobs where id = 2`);
    expect(row(2, 'blobs').ba).toBe(expected!.b!.replace(/\n/g, ''));
    expect(Buffer.from(row(2, 'blobs').ba as string, 'base64').length).toBe(1024 * 1024);
  });

  it('hands every value back to PostgreSQL as an equal value', async () => {
    const s = events.find((e) => e.schema.id.table === 'types')!.schema;
    let checked = 0;
    for (const id of [1, 2, 3, 4]) {
      const r = row(id);
      for (const col of s.columns) {
        const v = r[col.name] as ColumnValue;
        let sql: string;
        let param: string | null;
        if (v === null) {
          sql = `select ("${col.name}" is null)::text as ok from types where id = $2 and $1::text is null`;
          param = null;
        } else if (col.type.kind === 'json' && col.sourceType === 'json') {
          sql = `select ("${col.name}"::text = $1)::text as ok from types where id = $2`;
          param = v as string;
        } else if (col.type.kind === 'bytes') {
          sql = `select ("${col.name}" = decode($1, 'base64'))::text as ok from types where id = $2`;
          param = v as string;
        } else if (col.type.kind === 'array' && col.type.element.kind === 'bytes') {
          sql = `select ("${col.name}" = (select array_agg(decode(x, 'base64')) from unnest($1::text[]) x))::text as ok from types where id = $2`;
          param = pgArray(v as ColumnValue[]);
        } else if (col.type.kind === 'array' && col.type.element.kind === 'json' && col.sourceType === 'json[]') {
          continue;
        } else {
          sql = `select ("${col.name}" is not distinct from $1::${col.sourceType})::text as ok from types where id = $2`;
          param = Array.isArray(v) ? pgArray(v) : String(v);
        }
        const [res] = await db.q(sql, [param, id]);
        expect(res?.ok, `row ${id} column ${col.name}: ${JSON.stringify(v)?.slice(0, 80)}`).toBe('true');
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(140);
  });

  it('fills source and position like Debezium', () => {
    // Row 1 is the first statement of the INSERTS transaction.
    const e = events.find((x) => x.schema.id.table === 'types' && x.after?.id === 1)!;
    expect(e.source).toMatchObject({ connector: 'postgresql', name: 'pg', db: db.name, schema: 'public', table: 'types', snapshot: 'false' });
    expect(e.source.txId).toMatch(/^\d+$/);
    expect(parseLsn(e.source.commit_lsn!) >= parseLsn(e.source.lsn!)).toBe(true);
    expect(e.position).toEqual({ kind: 'pg', lsn: e.source.lsn, commitLsn: e.source.commit_lsn, seq: 0 });
    expect(Math.abs(e.source.ts_ms - Date.now())).toBeLessThan(10 * 60_000);
    expect(e.source.ts_us! - e.source.ts_ms * 1000).toBeGreaterThanOrEqual(0);
    expect(e.source.ts_us! - e.source.ts_ms * 1000).toBeLessThan(1000);
  });
});
