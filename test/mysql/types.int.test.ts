// Every column type through the real MariaDB binlog, the connector and Kafka, compared with what
// the server itself holds: each expected value is the server's own text of the column (CAST,
// HEX, BIN), read right after each statement and turned into the canonical form by rules written
// here, independently of the connector's binary decoders.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ColumnValue, Row } from '../../schemas/column-types.js';
import { type Running, type TestDb, changeOf, collect, createTestDb, createTopic, deleteTopics, dropTestDb, startSource, testConfig, topicsOf, txOf } from './harness.js';

type Kind = 'int32' | 'int64' | 'decimal' | 'float' | 'double' | 'text' | 'bytes' | 'bit' | 'date' | 'time' | 'datetime' | 'timestamp' | 'year';

const COLS: [name: string, type: string, kind: Kind, bits?: number][] = [
  ['ti', 'TINYINT', 'int32'],
  ['tiu', 'TINYINT UNSIGNED', 'int32'],
  ['si', 'SMALLINT', 'int32'],
  ['siu', 'SMALLINT UNSIGNED', 'int32'],
  ['mi', 'MEDIUMINT', 'int32'],
  ['miu', 'MEDIUMINT UNSIGNED', 'int32'],
  ['i', 'INT', 'int32'],
  ['iu', 'INT UNSIGNED', 'int32'],
  ['bi', 'BIGINT', 'int64'],
  ['biu', 'BIGINT UNSIGNED', 'int64'],
  ['dec1', 'DECIMAL(10,3)', 'decimal'],
  ['dec2', 'DECIMAL(65,30)', 'decimal'],
  ['dec0', 'DECIMAL(65,0)', 'decimal'],
  ['decu', 'DECIMAL(20,10) UNSIGNED', 'decimal'],
  ['f', 'FLOAT', 'float'],
  ['d', 'DOUBLE', 'double'],
  ['b1', 'BIT(1)', 'bit', 1],
  ['b9', 'BIT(9)', 'bit', 9],
  ['b64', 'BIT(64)', 'bit', 64],
  ['c', 'CHAR(10)', 'text'],
  ['vc', 'VARCHAR(255)', 'text'],
  ['vl', 'VARCHAR(50) CHARACTER SET latin1', 'text'],
  ['vu16', 'VARCHAR(20) CHARACTER SET utf16', 'text'],
  ['tx', 'TEXT', 'text'],
  ['lt', 'LONGTEXT', 'text'],
  ['bn', 'BINARY(8)', 'bytes'],
  ['vb', 'VARBINARY(64)', 'bytes'],
  ['bl', 'BLOB', 'bytes'],
  ['lb', 'LONGBLOB', 'bytes'],
  ['e', "ENUM('small','medium','large','x''y')", 'text'],
  ['s', "SET('a','b','c','d')", 'text'],
  ['dt', 'DATE', 'date'],
  ['tm', 'TIME', 'time'],
  ['tm6', 'TIME(6)', 'time'],
  ['dtm', 'DATETIME', 'datetime'],
  ['dtm3', 'DATETIME(3)', 'datetime'],
  ['dtm6', 'DATETIME(6)', 'datetime'],
  ['ts', 'TIMESTAMP NULL', 'timestamp'],
  ['ts6', 'TIMESTAMP(6) NULL', 'timestamp'],
  ['yr', 'YEAR', 'year'],
  ['j', 'JSON', 'text'],
  ['u', 'UUID', 'text'],
];

function selectExpr(name: string, kind: Kind): string {
  const c = `\`${name}\``;
  switch (kind) {
    case 'bytes':
      return `HEX(${c})`;
    case 'bit':
      return `BIN(${c})`;
    case 'text':
      return `CAST(${c} AS CHAR CHARACTER SET utf8mb4)`;
    case 'year':
      return `CAST(${c} AS UNSIGNED)`;
    default:
      return `CAST(${c} AS CHAR)`;
  }
}

/** Server text -> canonical value (schemas/column-types.ts), by the rules of the value table. */
function canonical(kind: Kind, v: unknown, bits = 0): ColumnValue {
  if (v === null || v === undefined) return null;
  const s = String(v);
  switch (kind) {
    case 'int32':
    case 'year':
      return Number(s);
    case 'float':
      // FLOAT is a float32: equal when both read back as the same float32.
      return Math.fround(Number(s));
    case 'double':
      return Number(s);
    case 'bytes':
      return Buffer.from(s, 'hex').toString('base64');
    case 'bit':
      return s.padStart(bits, '0');
    case 'datetime':
      return s.replace(' ', 'T');
    case 'timestamp':
      return `${s.replace(' ', 'T')}Z`;
    default:
      return s;
  }
}

const MB = 1024 * 1024;
const bigText = `${'😀'.repeat(1000)}${'x'.repeat(MB - 4000)}`;

const ROWS: Record<string, string>[] = [
  {
    id: '1', ti: '-128', tiu: '0', si: '-32768', siu: '0', mi: '-8388608', miu: '0', i: '-2147483648', iu: '0', bi: '-9223372036854775808', biu: '0',
    dec1: '-9999999.999', dec2: '-99999999999999999999999999999999999.999999999999999999999999999999', dec0: '-99999999999999999999999999999999999999999999999999999999999999999', decu: '0',
    f: '-3.40282e38', d: '-1.7976931348623157e308', b1: "b'0'", b9: "b'0'", b64: "b'0'",
    c: "''", vc: "''", vl: "''", vu16: "''", tx: "''", lt: "''", bn: "''", vb: "''", bl: "''", lb: "''",
    e: "'small'", s: "''", dt: "'1000-01-01'", tm: "'-838:59:59'", tm6: "'-838:59:59.000000'", dtm: "'1000-01-01 00:00:00'", dtm3: "'1000-01-01 00:00:00.001'",
    dtm6: "'1000-01-01 00:00:00.000001'", ts: "'1970-01-01 00:00:01'", ts6: "'1970-01-01 00:00:01.000001'", yr: '1901', j: "'null'", u: "'00000000-0000-0000-0000-000000000000'",
  },
  {
    id: '2', ti: '127', tiu: '255', si: '32767', siu: '65535', mi: '8388607', miu: '16777215', i: '2147483647', iu: '4294967295', bi: '9223372036854775807', biu: '18446744073709551615',
    dec1: '9999999.999', dec2: '99999999999999999999999999999999999.999999999999999999999999999999', dec0: '99999999999999999999999999999999999999999999999999999999999999999', decu: '9999999999.9999999999',
    f: '3.40282e38', d: '1.7976931348623157e308', b1: "b'1'", b9: "b'111111111'", b64: '0xffffffffffffffff',
    c: "'😀 emoji'", vc: "REPEAT('😀', 255)", vl: "'àéîõü ÿ€'", vu16: "'hé😀𝄞'", tx: "'tab\\tnewline\\nquote\\'backslash\\\\'", lt: '?',
    bn: '0xffffffffffffffff', vb: '0x00ff00ff00', bl: 'REPEAT(0xfe, 65535)', lb: '?',
    e: "'x''y'", s: "'a,b,c,d'", dt: "'9999-12-31'", tm: "'838:59:59'", tm6: "'838:59:59.000000'", dtm: "'9999-12-31 23:59:59'", dtm3: "'9999-12-31 23:59:59.999'",
    dtm6: "'9999-12-31 23:59:59.999999'", ts: "'2038-01-19 03:14:07'", ts6: "'2038-01-19 03:14:07.999999'", yr: '2155',
    j: `'{"a": [1, 2.5, "😀", null, true], "nested": {"k": "v"}}'`, u: "'e1a9b6a0-1c2b-11ee-be56-0242ac120002'",
  },
  { id: '3' },
  { id: '4', dt: "'0000-00-00'", dtm: "'0000-00-00 00:00:00'", dtm6: "'0000-00-00 00:00:00.000000'", ts: "'0000-00-00 00:00:00'", yr: '0', tm: "'00:00:00'", e: "''", dec1: '0', f: '0', d: '0' },
  {
    id: '5', ti: '-1', tiu: '200', si: '-300', mi: '-70000', i: '-123456', iu: '3000000000', bi: '-4294967296', biu: '9007199254740993',
    dec1: '-0.001', dec2: '0.000000000000000000000000000001', dec0: '-1', decu: '0.5', f: '0.1', d: '0.1', b9: "b'100000001'", b64: "b'1010'",
    c: "'trail  '", vc: "'ünïcödé'", vl: "'café'", tx: "''", bn: '0x01', vb: "X''", e: "'medium'", s: "'b,d'",
    dt: "'2024-02-29'", tm: "'-00:00:01'", tm6: "'-00:00:00.000001'", dtm: "'2024-02-29 12:34:56'", dtm3: "'2024-02-29 12:34:56.5'", dtm6: "'2024-02-29 12:34:56.000001'",
    ts: "'2024-02-29 12:34:56'", ts6: "'2024-02-29 12:34:56.123456'", yr: '2024', j: "'[]'",
  },
];

describe('mysql source: every type, edge values, against the server', () => {
  let db: TestDb;
  let run: Running | undefined;
  const cfgHolder: { prefix?: string } = {};

  beforeAll(async () => {
    db = await createTestDb('t_mytypes');
    await db.q(`SET SESSION time_zone = '+00:00', SESSION sql_mode = ''`);
    await db.q(`CREATE TABLE types (id INT NOT NULL PRIMARY KEY, ${COLS.map(([n, t]) => `\`${n}\` ${t}`).join(', ')})`);
  });

  afterAll(async () => {
    await run?.stop();
    await dropTestDb(db);
    if (cfgHolder.prefix) await deleteTopics(cfgHolder.prefix);
  });

  it('publishes inserts, updates and deletes of every type exactly as the server holds them', async () => {
    const cfg = testConfig([db.name]);
    cfgHolder.prefix = cfg.name;
    const topics = topicsOf(cfg);
    const topic = topics.table({ db: db.name, schema: null, table: 'types' });
    // 1 MB values (and an update carrying two of them, before and after) exceed Kafka's default 1 MB limit.
    await createTopic(topic, 3, { 'max.message.bytes': String(32 * MB) });
    run = startSource(cfg);
    // The connector stores its start position before it streams: wait for it, then write.
    await collect([`${cfg.name}.offsets`], (m) => m.length > 0, 60_000);

    const current = new Map<number, Row>();
    const expected: { op: string; id: number; before: Row | null; after: Row | null }[] = [];
    const canon = async (id: number): Promise<Row> => {
      const rows = await db.q<Record<string, unknown>>(`SELECT id, ${COLS.map(([n, , k]) => `${selectExpr(n, k)} AS \`${n}\``).join(', ')} FROM types WHERE id = ?`, [id]);
      const r = rows[0]!;
      return Object.fromEntries([['id', Number(r.id)], ...COLS.map(([n, , k, bits]) => [n, canonical(k, r[n], bits)])]);
    };

    for (const row of ROWS) {
      const cols = Object.keys(row);
      const values = cols.map((c) => (row[c] === '?' ? '?' : row[c]));
      const params = cols.filter((c) => row[c] === '?').map((c) => (c === 'lt' ? bigText : Buffer.alloc(MB, 0xab)));
      await db.q(`INSERT INTO types (${cols.map((c) => `\`${c}\``).join(', ')}) VALUES (${values.join(', ')})`, params);
      const id = Number(row.id);
      const after = await canon(id);
      expected.push({ op: 'c', id, before: null, after });
      current.set(id, after);
    }
    const updates: [number, string, unknown[]][] = [
      [5, "UPDATE types SET vc = 'changed 😀', biu = 18446744073709551614, dec2 = -0.5, j = '{\"x\": 1}' WHERE id = 5", []],
      [2, 'UPDATE types SET lb = ?, ti = 0 WHERE id = 2', [Buffer.alloc(MB, 0xcd)]],
      [3, "UPDATE types SET b1 = b'1', s = 'a', e = 'large' WHERE id = 3", []],
      [1, 'UPDATE types SET id = 10 WHERE id = 1', []],
    ];
    for (const [id, stmt, params] of updates) {
      await db.q(stmt, params);
      const newId = stmt.includes('SET id = 10') ? 10 : id;
      const after = await canon(newId);
      expected.push({ op: 'u', id: newId, before: current.get(id)!, after });
      current.delete(id);
      current.set(newId, after);
    }
    await db.q('DELETE FROM types WHERE id = 4');
    expected.push({ op: 'd', id: 4, before: current.get(4)!, after: null });

    const wantChanges = expected.length;
    const msgs = await collect([topic], (m) => m.filter((x) => x.value !== null).length >= wantChanges && m.some((x) => x.value === null), 90_000);
    const changes = msgs.filter((m) => m.value !== null).map((m) => ({ msg: m, ev: changeOf(m)! }));
    expect(changes).toHaveLength(wantChanges);

    const norm = (r: Row | null): Row | null => {
      if (r === null) return null;
      const out: Row = { ...r };
      if (typeof out.f === 'number') out.f = Math.fround(out.f);
      return out;
    };
    // Per key, in order (one key's changes share a partition).
    for (const exp of expected) {
      const key = exp.op === 'u' && exp.before && exp.before.id !== exp.after!.id ? exp.after!.id : exp.id;
      const mine = changes.filter((c) => JSON.parse(c.msg.key!.toString()).id === key);
      const idx = expected.filter((e) => e.id === exp.id && expected.indexOf(e) < expected.indexOf(exp)).length;
      const got = exp.op === 'u' && exp.before!.id !== exp.after!.id ? mine[0]! : mine[idx]!;
      expect(got, `${exp.op} ${exp.id}`).toBeDefined();
      expect(got.ev.op, `${exp.op} ${exp.id}`).toBe(exp.op);
      expect(norm(got.ev.after), `after of ${exp.op} ${exp.id}`).toEqual(norm(exp.after));
      expect(norm(got.ev.before), `before of ${exp.op} ${exp.id}`).toEqual(norm(exp.before));
    }

    // A delete is followed by its tombstone, on the same key.
    const del = msgs.findIndex((m) => m.value !== null && changeOf(m)!.op === 'd');
    const tomb = msgs.findIndex((m, i) => i > del && m.value === null);
    expect(tomb).toBeGreaterThan(del);
    expect(msgs[tomb]!.key!.toString()).toBe('{"id":4}');

    // The schema header says what the table is, with the server's exact type text.
    const schema = changes[0]!.ev.schema;
    expect(schema.primaryKey).toEqual(['id']);
    const col = (n: string) => schema.columns.find((c) => c.name === n)!;
    expect(col('biu')).toMatchObject({ type: { kind: 'int', bits: 64, unsigned: true }, sourceType: 'bigint(20) unsigned' });
    expect(col('dec2')).toMatchObject({ type: { kind: 'decimal', precision: 65, scale: 30 }, sourceType: 'decimal(65,30)' });
    expect(col('j')).toMatchObject({ type: { kind: 'json' }, sourceType: 'json' });
    expect(col('u')).toMatchObject({ type: { kind: 'uuid' } });
    expect(col('ts6').type).toEqual({ kind: 'timestamp', precision: 6, tz: true });
    expect(col('vl').type).toMatchObject({ kind: 'string', charset: 'latin1', length: 50 });

    // Transaction metadata: BEGIN and END for each of the 10 transactions, in commit order.
    const txMsgs = await collect([topics.transaction], (m) => m.length >= 2 * wantChanges, 30_000);
    const txs = txMsgs.map(txOf);
    expect(txs.filter((t) => t.status === 'END').map((t) => t.event_count)).toEqual(new Array(wantChanges).fill(1));
    expect(new Set(txs.map((t) => t.id)).size).toBe(wantChanges);
    expect(changes.every((c) => c.ev.source.connector === 'mysql' && c.ev.source.db === db.name && typeof c.ev.source.gtid === 'string')).toBe(true);
  });
});
