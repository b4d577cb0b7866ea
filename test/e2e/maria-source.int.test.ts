import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DLQ_HEADER } from '../../pipeline/dead-letter.js';
import { pipelineTopics } from '../../pipeline/topics.js';
import { consumeN, testKafka, until } from '../helpers.js';
import { startSink } from '../sinks/kafka-support.js';
import { mariaReplica, pgReplica, type Replica } from '../sinks/support.js';
import { describeDiff, differences, e2eConfig, mariaSourceDb, type SourceDb, startSourceRunner, waitForEqual } from './support.js';

/**
 * MariaDB → Kafka → MariaDB (key mode) and MariaDB → Kafka → PostgreSQL (transaction mode), from
 * the real MariaDB binlog connector, one workload, both sinks at once; then a row-by-row
 * comparison of every table.
 */

const COLS = `ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED, mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED,
  bi BIGINT, biu BIGINT UNSIGNED, dec1 DECIMAL(10,3), dec2 DECIMAL(65,30), decu DECIMAL(20,10) UNSIGNED, f FLOAT, d DOUBLE,
  b1 BIT(1), b9 BIT(9), b64 BIT(64), c CHAR(10), vc VARCHAR(255), vl VARCHAR(50) CHARACTER SET latin1, tx TEXT,
  bn BINARY(8), vb VARBINARY(64), bl BLOB, e ENUM('small','medium','large','x''y'), s SET('a','b','c','d'),
  dt DATE, tm TIME, tm6 TIME(6), dtm DATETIME, dtm6 DATETIME(6), ts TIMESTAMP NULL, ts6 TIMESTAMP(6) NULL, yr YEAR, j JSON, u UUID, flag BOOLEAN`;

const DDL = [
  `CREATE TABLE accounts (id BIGINT PRIMARY KEY, owner VARCHAR(40) NOT NULL, balance DECIMAL(12,2) NOT NULL, note TEXT)`,
  `CREATE TABLE types (id INT NOT NULL PRIMARY KEY, ${COLS})`,
  `CREATE TABLE edge (id INT PRIMARY KEY, dt DATE NULL, tm TIME NULL, dtm DATETIME NULL)`,
  `CREATE TABLE pairs (a INT, b VARCHAR(20), v INT NOT NULL, PRIMARY KEY (a, b))`,
  "CREATE TABLE `we\"ird;tab le` (`co\"l; x` INT PRIMARY KEY, `v'al` TEXT, `sp ace` INT)",
];
const WEIRD = 'we"ird;tab le';
const TABLES = ['accounts', 'types', 'pairs'];

const TYPES_ROWS = [
  `INSERT INTO types VALUES (1, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807, 18446744073709551615,
    9999999.999, 99999999999999999999999999999999999.999999999999999999999999999999, 9999999999.9999999999, 3.40282e38, 1.7976931348623157e308,
    b'1', b'111111111', 0xffffffffffffffff, '😀 emoji', REPEAT('😀', 255), 'àéîõü ÿ€', 'tab\\tnewline\\nquote\\'backslash\\\\',
    0xffffffffffffffff, 0x00ff00ff00, REPEAT(0xfe, 3000), 'x''y', 'a,b,c,d', '9999-12-31', '23:59:59', '23:59:59.999999', '9999-12-31 23:59:59',
    '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07', '2038-01-19 03:14:07.999999', 2155, '{"a": [1, 2.5, "😀", null, true], "nested": {"k": "v"}}',
    'e1a9b6a0-1c2b-11ee-be56-0242ac120002', TRUE)`,
  `INSERT INTO types (id) VALUES (2)`,
  `INSERT INTO types VALUES (3, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,
    -9999999.999, -99999999999999999999999999999999999.999999999999999999999999999999, 0, -1.5, -2.5e-300,
    b'0', b'0', 0, '', '', '', '', '', '', '', 'small', '', '1000-01-01', '00:00:00', '00:00:00.000001', '1000-01-01 00:00:00',
    '1000-01-01 00:00:00.000001', '1970-01-01 00:00:01', '1970-01-01 00:00:01.000001', 1901, '[]', '00000000-0000-0000-0000-000000000000', FALSE)`,
  `UPDATE types SET vc = 'changed 😀', biu = 18446744073709551614, dec2 = -0.5, j = '{"x": 1}' WHERE id = 1`,
  `INSERT INTO types (id, vc) VALUES (4, 'to delete')`,
  `DELETE FROM types WHERE id = 4`,
];

/** MySQL-only values: zero dates (stored as NULL in PostgreSQL), TIME beyond a day (dead-lettered there). */
const EDGE_ROWS = [`INSERT INTO edge VALUES (1, '0000-00-00', '12:00:00', '0000-00-00 00:00:00')`, `INSERT INTO edge VALUES (2, '2024-01-01', '838:59:59', NULL)`, `INSERT INTO edge VALUES (3, '2024-01-02', '-01:00:00', NULL)`];

async function accountsWorkload(src: SourceDb, rounds: number): Promise<void> {
  const live: number[] = [];
  let next = 1;
  const pick = () => live[Math.floor(Math.random() * live.length)];
  for (let r = 0; r < rounds; r++) {
    if (r === Math.floor(rounds / 2)) {
      await src.exec('TRUNCATE accounts');
      live.length = 0;
    }
    await src.exec('BEGIN');
    for (let i = 0; i < 4; i++) {
      const id = next++;
      live.push(id);
      await src.exec('INSERT INTO accounts VALUES (?, ?, ?, ?)', [id, `owner ${id}`, (id * 1.25).toFixed(2), `note ${id}`]);
    }
    const u = pick();
    if (u !== undefined) await src.exec('UPDATE accounts SET balance = balance + 10, owner = ? WHERE id = ?', [`updated ${r}`, u]);
    const k = pick();
    if (k !== undefined) {
      await src.exec('UPDATE accounts SET id = ? WHERE id = ?', [k + 1_000_000, k]);
      live.splice(live.indexOf(k), 1, k + 1_000_000);
    }
    const d = pick();
    if (d !== undefined && r % 3 === 0) {
      await src.exec('DELETE FROM accounts WHERE id = ?', [d]);
      live.splice(live.indexOf(d), 1);
    }
    await src.exec('COMMIT');
    if (r % 10 === 5) await src.exec('UPDATE accounts SET balance = balance * 2 WHERE id % 3 = 0');
  }
}

describe('MariaDB source → MariaDB (key mode) and PostgreSQL (transaction mode) replicas', () => {
  const kafka = testKafka();
  let src: SourceDb;
  let pgRep: Replica;
  let myRep: Replica;
  const stops: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    src = await mariaSourceDb();
    pgRep = await pgReplica();
    myRep = await mariaReplica();
    for (const s of DDL) await src.exec(s);
  });
  afterAll(async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    await src?.drop();
    await pgRep?.drop();
    await myRep?.drop();
  });

  it('replicates a mixed workload of every type with 0 differences; unrepresentable values go to the DLQ', async () => {
    myRep.track(src.name);
    myRep.track('cdc_meta_e2e_my');
    const cfg = e2eConfig(src, [
      { name: 'my', url: myRep.url, mode: 'key', metaSchema: 'cdc_meta_e2e_my', topicRefreshIntervalMs: 1000 },
      { name: 'pg', url: pgRep.url, mode: 'transaction', topicRefreshIntervalMs: 1000 },
    ]);
    const source = await startSourceRunner(cfg);
    stops.push(source.stop);
    const mySink = startSink(cfg, 'my', kafka);
    const pgSink = startSink(cfg, 'pg', kafka);
    stops.push(mySink.stop, pgSink.stop);

    // The connector starts at the end of the binlog: write a probe until it reaches both replicas.
    let probe = 0;
    await until(
      'the pipeline to stream',
      async () => {
        await src.exec('INSERT IGNORE INTO pairs VALUES (?, ?, 0)', [-1, `probe${probe++}`]);
        const a = await pgRep.query(`select count(*)::int as n from "${src.name}".pairs`).catch(() => [{ n: 0 }]);
        const b = await myRep.query(`select count(*) as n from \`${src.name}\`.pairs`).catch(() => [{ n: 0 }]);
        return Number(a[0]!.n) > 0 && Number(b[0]!.n) > 0;
      },
      90_000,
      { everyMs: 1000 },
    );
    await src.exec('DELETE FROM pairs WHERE a = -1');

    for (const s of TYPES_ROWS) await src.exec(s);
    for (const s of EDGE_ROWS) await src.exec(s);
    await src.exec(`INSERT INTO pairs VALUES (1, 'x', 1), (1, 'y', 2), (2, 'x', 3)`);
    await src.exec(`UPDATE pairs SET b = 'z' WHERE a = 1 AND b = 'x'`);
    await src.exec(`UPDATE pairs SET v = v + 100 WHERE a = 2`);
    await src.exec("INSERT INTO `we\"ird;tab le` VALUES (1, 'a''; drop table x; --', 1), (2, 'b', 2)");
    await src.exec("UPDATE `we\"ird;tab le` SET `v'al` = 'c\"d' WHERE `co\"l; x` = 1");
    await src.exec("DELETE FROM `we\"ird;tab le` WHERE `co\"l; x` = 2");
    await accountsWorkload(src, 60);

    const myDiff = await waitForEqual(src, cfg.sinks[0]!, [...TABLES, 'edge'], undefined);
    expect(differences(myDiff), describeDiff(myDiff)).toBe(0);
    expect(myDiff.find((t) => t.table === 'accounts')!.sourceRows).toBeGreaterThan(50);

    const pgDb = pgRep.url.split('/').pop();
    const pgDiff = await waitForEqual(src, cfg.sinks[1]!, TABLES, pgDb);
    expect(differences(pgDiff), describeDiff(pgDiff)).toBe(0);

    const weird = await src.rowsText(WEIRD, ['co"l; x']);
    expect(weird).toEqual([{ 'co"l; x': '1', "v'al": 'c"d', 'sp ace': '1' }]);
    expect(await myRep.rows(src.name, WEIRD, ['co"l; x'])).toEqual(weird);
    expect(await pgRep.rows(src.name, WEIRD, ['co"l; x'])).toEqual(weird);

    // PostgreSQL: the zero dates became NULL (documented), TIME beyond a day went to the DLQ
    expect(await pgRep.rows(src.name, 'edge', ['id'])).toEqual([{ id: '1', dt: null, tm: '12:00:00', dtm: null }]);
    const dead = await consumeN(kafka, pipelineTopics(cfg.kafka.topicPrefix!).deadLetter('pg'), 2);
    for (const m of dead) expect(m.headers?.[DLQ_HEADER.reason]?.toString()).toMatch(/time/i);
    expect(dead.map((m) => m.headers?.[DLQ_HEADER.topic]?.toString())).toEqual([expect.stringMatching(/\.edge$/), expect.stringMatching(/\.edge$/)]);
  });
});
