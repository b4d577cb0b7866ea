// Tables and canonical rows covering every column kind and its awkward values, shared by the
// Avro unit tests (schemas/avro/*.test.ts) and the registry integration tests.
import type { ChangeEvent } from '../../schemas/change-event.js';
import { type Row, UNCHANGED } from '../../schemas/column-types.js';
import type { ColumnSchema, TableSchema } from '../../schemas/table-schema.js';

const col = (name: string, type: ColumnSchema['type'], sourceType: string, nullable = true): ColumnSchema => ({ name, type, nullable, sourceType });

export const pgAllTypes: TableSchema = {
  id: { db: 'shop', schema: 'public', table: 'all_types' },
  dialect: 'postgres',
  primaryKey: ['id'],
  columns: [
    col('id', { kind: 'int', bits: 64 }, 'bigint', false),
    col('flag', { kind: 'bool' }, 'boolean'),
    col('small', { kind: 'int', bits: 16 }, 'smallint'),
    col('i32', { kind: 'int', bits: 32 }, 'integer'),
    col('real', { kind: 'float', bits: 32 }, 'real'),
    col('dbl', { kind: 'float', bits: 64 }, 'double precision'),
    col('amount', { kind: 'decimal', precision: 12, scale: 2 }, 'numeric(12,2)'),
    col('wide', { kind: 'decimal', precision: 38, scale: 10 }, 'numeric(38,10)'),
    col('free', { kind: 'decimal' }, 'numeric'),
    col('name', { kind: 'string', length: 40 }, 'character varying(40)'),
    col('note', { kind: 'string' }, 'text'),
    col('blob', { kind: 'bytes' }, 'bytea'),
    col('uid', { kind: 'uuid' }, 'uuid'),
    col('doc', { kind: 'json' }, 'jsonb'),
    col('day', { kind: 'date' }, 'date'),
    col('t', { kind: 'time', precision: 6 }, 'time without time zone'),
    col('ttz', { kind: 'time', tz: true }, 'time with time zone'),
    col('ts', { kind: 'timestamp', tz: false }, 'timestamp without time zone'),
    col('tstz', { kind: 'timestamp', tz: true, precision: 6 }, 'timestamp with time zone'),
    col('span', { kind: 'interval' }, 'interval'),
    col('mood', { kind: 'enum', values: ['sad', 'ok', 'happy'], name: 'mood' }, 'mood'),
    col('state', { kind: 'enum', values: ['in progress', 'done'] }, 'state'),
    col('bits', { kind: 'bit', length: 4 }, 'bit(4)'),
    col('ints', { kind: 'array', element: { kind: 'int', bits: 32 } }, 'integer[]'),
    col('grid', { kind: 'array', element: { kind: 'string' }, dims: 2 }, 'text[]'),
    col('nums', { kind: 'array', element: { kind: 'decimal', precision: 5, scale: 2 } }, 'numeric(5,2)[]'),
    col('pt', { kind: 'unknown' }, 'point'),
    col('Odd Name!', { kind: 'string' }, 'text'),
  ],
};

export const mysqlAllTypes: TableSchema = {
  id: { db: 'shop', schema: null, table: 'all_types' },
  dialect: 'mysql',
  primaryKey: ['id', 'code'],
  columns: [
    col('id', { kind: 'int', bits: 64, unsigned: true }, 'bigint(20) unsigned', false),
    col('code', { kind: 'string', length: 8 }, 'varchar(8)', false),
    col('tiny', { kind: 'int', bits: 8 }, 'tinyint(4)'),
    col('med', { kind: 'int', bits: 24, unsigned: true }, 'mediumint(8) unsigned'),
    col('u32', { kind: 'int', bits: 32, unsigned: true }, 'int(10) unsigned'),
    col('price', { kind: 'decimal', precision: 10, scale: 4 }, 'decimal(10,4)'),
    col('f', { kind: 'float', bits: 32 }, 'float'),
    col('d', { kind: 'date' }, 'date'),
    col('t3', { kind: 'time', precision: 3 }, 'time(3)'),
    col('dt', { kind: 'timestamp', tz: false, precision: 0 }, 'datetime'),
    col('dt6', { kind: 'timestamp', tz: false, precision: 6 }, 'datetime(6)'),
    col('ts', { kind: 'timestamp', tz: true, precision: 0 }, 'timestamp'),
    col('y', { kind: 'year' }, 'year(4)'),
    col('e', { kind: 'enum', values: ['small', 'large'] }, "enum('small','large')"),
    col('s', { kind: 'set', values: ['a', 'b', 'c'] }, "set('a','b','c')"),
    col('bin', { kind: 'bytes', length: 4, fixed: true }, 'binary(4)'),
    col('j', { kind: 'json' }, 'json'),
    col('b', { kind: 'bit', length: 10 }, 'bit(10)'),
  ],
};

/** PostgreSQL rows: ordinary values first, then every awkward one. */
export const pgRows: Row[] = [
  {
    id: '1', flag: true, small: -32768, i32: 2147483647, real: 1.1, dbl: 0.1, amount: '1024.50', wide: '1234567890123456789012345678.0123456789',
    free: '3.14159265358979323846264338327950288419716939937510', name: 'ada', note: '', blob: Buffer.from([0, 1, 2, 255]).toString('base64'),
    uid: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', doc: '{"a": [1, 2.50, "x"], "b": null}', day: '2026-11-25', t: '12:34:56.789', ttz: '12:00:00+02',
    ts: '2026-11-25T22:08:24.123456', tstz: '2026-11-25T22:08:24.123456Z', span: 'P1Y2M3DT4H5M6.5S', mood: 'happy', state: 'in progress', bits: '1010',
    ints: [1, null, 3], grid: [['a', 'b'], ['c', null]], nums: ['1.50', '-2.25'], pt: '(1,2)', 'Odd Name!': 'x',
  },
  {
    id: '9223372036854775807', flag: false, small: 32767, i32: -2147483648, real: 'NaN', dbl: 'Infinity', amount: 'NaN', wide: '-0.0000000001',
    free: 'NaN', name: '日本語 🚀', note: 'x'.repeat(10_000), blob: '', uid: '00000000-0000-0000-0000-000000000000', doc: '[]', day: 'infinity',
    t: '24:00:00', ttz: '00:00:00-11:30', ts: '-infinity', tstz: 'infinity', span: 'PT0S', mood: 'sad', state: 'done', bits: '0000',
    ints: [], grid: [], nums: ['NaN', '1.00'], pt: '(0,0)', 'Odd Name!': null,
  },
  {
    id: '-9223372036854775808', flag: null, small: null, i32: null, real: '-Infinity', dbl: 5e-324, amount: '-9999999999.99', wide: null,
    free: '-Infinity', name: null, note: UNCHANGED, blob: UNCHANGED, uid: null, doc: UNCHANGED, day: '0044-03-15 BC', t: '00:00:00',
    ttz: null, ts: '0001-01-01T00:00:00', tstz: '1969-12-31T23:59:59.999999Z', span: null, mood: null, state: null, bits: null,
    ints: UNCHANGED, grid: null, nums: null, pt: null, 'Odd Name!': UNCHANGED,
  },
  {
    // Values that are numerically right but not printed the way the Avro decoding would print
    // them: exactness needs the raw text beside the Avro value.
    id: '4', flag: true, small: 1, i32: 1, real: 1.100000023841858, dbl: -0, amount: '1024.5', wide: '1', free: '1e5', name: 'n', note: 'n',
    blob: 'AAE', uid: 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', doc: 'null', day: '12345-01-01', t: '12:00:00.500000', ttz: '12:00:00Z',
    ts: '2026-01-01T00:00:00.100', tstz: '2026-01-01T00:00:00Z', span: 'P1D', mood: 'ok', state: 'done', bits: '1', ints: [2147483647],
    grid: [['x']], nums: ['1.5'], pt: '', 'Odd Name!': '',
  },
];

export const mysqlRows: Row[] = [
  {
    id: '18446744073709551615', code: 'A1', tiny: -128, med: 16777215, u32: 4294967295, price: '123456.7890', f: 3.4028235e38, d: '9999-12-31',
    t3: '-838:59:59.000', dt: '2026-11-25T22:08:24', dt6: '2026-11-25T22:08:24.000001', ts: '2038-01-19T03:14:07Z', y: 2155, e: 'large', s: 'a,c',
    bin: Buffer.from('ab\u0000\u0000').toString('base64'), j: '{"k":"v"}', b: '1000000001',
  },
  {
    id: '0', code: 'Z', tiny: 127, med: 0, u32: 0, price: '-0.0001', f: 1e-45, d: '0000-00-00', t3: '12:00:00.500', dt: '0000-00-00T00:00:00',
    dt6: '1000-01-01T00:00:00.000000', ts: '1970-01-01T00:00:01Z', y: 0, e: 'small', s: '', bin: '', j: 'null', b: '0',
  },
];

let seq = 0;

/** A change event of `schema` with canonical rows, shaped like the connectors produce them. */
export function changeEvent(schema: TableSchema, op: ChangeEvent['op'], before: Row | null, after: Row | null): ChangeEvent {
  seq++;
  const pg = schema.dialect === 'postgres';
  return {
    op,
    before,
    after,
    source: pg
      ? { version: '0.1.0', connector: 'postgresql', name: 'pg1', ts_ms: 1795644504907, ts_us: 1795644504907123, snapshot: 'false', db: schema.id.db, schema: schema.id.schema, table: schema.id.table, txId: '771', lsn: `0/${(0x1a2b3c8 + seq).toString(16).toUpperCase()}`, commit_lsn: '0/1A2B4F0' }
      : { version: '0.1.0', connector: 'mysql', name: 'my1', ts_ms: 1795644504000, snapshot: 'false', db: schema.id.db, schema: null, table: schema.id.table, txId: '1-1-42', file: 'binlog.000003', pos: 4711 + seq, row: 0, gtid: '1-1-42', server_id: 1 },
    ts_ms: 1795644504915,
    transaction: { id: pg ? '771' : '1-1-42', total_order: seq, data_collection_order: seq },
    schema,
    position: pg ? { kind: 'pg', lsn: `0/${(0x1a2b3c8 + seq).toString(16).toUpperCase()}`, commitLsn: '0/1A2B4F0', seq } : { kind: 'mysql', file: 'binlog.000003', pos: 4711 + seq, gtid: '1-1-42', seq },
  };
}

/** Key-only row (a delete's `before` without REPLICA IDENTITY FULL). */
export function keyOnly(schema: TableSchema, row: Row): Row {
  return Object.fromEntries(schema.primaryKey.map((k) => [k, row[k] ?? null]));
}
