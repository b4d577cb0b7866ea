import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DLQ_HEADER } from '../../pipeline/dead-letter.js';
import { pipelineTopics, sourceTopics } from '../../pipeline/topics.js';
import { UNCHANGED } from '../../schemas/column-types.js';
import { consumeN, testKafka, until } from '../helpers.js';
import { startSink } from '../sinks/kafka-support.js';
import { mariaReplica, pgReplica, type Replica } from '../sinks/support.js';
import { describeDiff, differences, e2eConfig, pgSourceDb, type SourceDb, startSourceRunner, waitForEqual } from './support.js';

/**
 * PostgreSQL → Kafka → PostgreSQL and PostgreSQL → Kafka → MariaDB, from the real PostgreSQL
 * source connector, one workload, both sinks at once (PostgreSQL in key mode, MariaDB in
 * transaction mode); then a row-by-row comparison of every table through the readers.
 */

const DDL = [
  `create type mood as enum ('sad', 'ok', 'happy')`,
  `create table accounts (id bigint primary key, owner varchar(40) not null, balance numeric(12,2) not null, note text)`,
  `create table types (
    id int primary key,
    i2 int2, i4 int4, i8 int8, n numeric, n2 numeric(12,2), f4 float4, f8 float8, b bool,
    t text, vc varchar(10), c char(5), ba bytea, u uuid, j json, jb jsonb,
    d date, tm time, ttz timetz, ts timestamp, tstz timestamptz, ts3 timestamp(3), iv interval,
    ai int[], at text[], e mood, inet_c inet, bits bit(4), vbits varbit, rng int4range)`,
  `create table edge (id int primary key, n numeric, f4 float4, f8 float8, d date, ts timestamp, tstz timestamptz)`,
  `create table pairs (a int, b text, v int not null, primary key (a, b))`,
  `create table "we""ird;tab le" ("co""l; x" int primary key, "v'al" text, "sp ace" int)`,
];
const WEIRD = 'we"ird;tab le';
/** Compared through the connectors' readers; the weird-name table is compared with direct SQL (see support.ts). */
const TABLES = ['accounts', 'types', 'edge', 'pairs'];

const TYPES_ROWS = [
  `insert into types values (1, 32767, -2147483648, 9223372036854775807, '12345678901234567890.123456789', -9999999999.99, 1.5, 1e300, true,
    E'日本語 ünïcödé 😀 \\\\ "q" \\n tab\\t', 'abc', 'ab', '\\x00ff10', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
    '{"a": [1, 2.50, "x"],  "b":null}', '{"b": 1, "a": [true, 1.0]}',
    '2026-01-02', '23:59:59.999999', '12:00:00.000001+05:30', '2026-01-02 03:04:05.123456', '1999-12-31 23:59:59.999999+02', '2026-01-02 03:04:05.1239', '1 year 2 mons 3 days 04:05:06.789',
    '{1,2,3}', '{"a,b",NULL,"x\\"y"}', 'happy', '192.168.0.1/24', B'1010', B'101', '[1,5)')`,
  `insert into types (id) values (2)`,
  `insert into types values (3, -32768, 0, -9223372036854775808, '-0.5', 0, -2.5, -1e-300, false, '', '', '', '\\x', '00000000-0000-0000-0000-000000000000',
    '[]', '{}', '1970-01-01', '00:00:00', '00:00:00+00', '1970-01-01 00:00:00', '1970-01-01 00:00:00+00', '2000-02-29 12:00:00', '-1 days +02:00',
    '{}', '{}', 'sad', '::1', B'0000', B'', 'empty')`,
  `update types set t = 'changed', i8 = -1, jb = '{"new": true}', ai = '{4}' where id = 1`,
  `insert into types (id, t) values (4, 'to delete')`,
  `delete from types where id = 4`,
];

/** Values only PostgreSQL can hold; the MariaDB sink must dead-letter rows 1-4 and keep row 5. */
const EDGE_ROWS = [
  `insert into edge (id, n, f8) values (1, '${'9'.repeat(300)}.${'9'.repeat(300)}', 'NaN')`,
  `insert into edge (id, d) values (2, '-infinity')`,
  `insert into edge (id, ts) values (3, '4713-01-01 00:00:00 BC')`,
  `insert into edge (id, f4, tstz) values (4, '-Infinity', 'infinity')`,
  `insert into edge values (5, 1.25, 0.5, -0.25, '2024-02-29', '2024-02-29 23:59:59.5', '2024-02-29 23:59:59.5+00')`,
];

/** A mixed workload on accounts: inserts, non-key and key updates, deletes, a truncate, unchanged TOAST. */
async function accountsWorkload(src: SourceDb, rounds: number): Promise<void> {
  const live: number[] = [];
  let next = 1;
  const pick = () => live[Math.floor(Math.random() * live.length)];
  for (let r = 0; r < rounds; r++) {
    if (r === Math.floor(rounds / 2)) {
      await src.exec('truncate accounts');
      live.length = 0;
    }
    await src.exec('begin');
    for (let i = 0; i < 4; i++) {
      const id = next++;
      live.push(id);
      // Random (incompressible) text over 2 kB is stored out of line (TOAST).
      const note = i === 0 ? randomBytes(3000).toString('base64') : `note ${id}`;
      await src.exec('insert into accounts values ($1, $2, $3, $4)', [id, `owner ${id}`, (id * 1.25).toFixed(2), note]);
    }
    const u = pick();
    if (u !== undefined) await src.exec('update accounts set balance = balance + 10, owner = $2 where id = $1', [u, `updated ${r}`]);
    const k = pick();
    if (k !== undefined) {
      await src.exec('update accounts set id = $2 where id = $1', [k, k + 1_000_000]);
      live.splice(live.indexOf(k), 1, k + 1_000_000);
    }
    const d = pick();
    if (d !== undefined && r % 3 === 0) {
      await src.exec('delete from accounts where id = $1', [d]);
      live.splice(live.indexOf(d), 1);
    }
    await src.exec('commit');
    if (r % 10 === 5) await src.exec('update accounts set balance = balance * 2 where id % 3 = 0');
  }
}

describe('PostgreSQL source → PostgreSQL (key mode) and MariaDB (transaction mode) replicas', () => {
  const kafka = testKafka();
  let src: SourceDb;
  let pgRep: Replica;
  let myRep: Replica;
  let stops: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    src = await pgSourceDb();
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
    const myDb = src.name; // PostgreSQL source into a MariaDB URL without a database: the source database's name
    myRep.track(myDb);
    myRep.track('cdc_meta_e2e_pg');
    const cfg = e2eConfig(src, [
      { name: 'pg', url: pgRep.url, mode: 'key', topicRefreshIntervalMs: 1000 },
      { name: 'my', url: myRep.url, mode: 'transaction', metaSchema: 'cdc_meta_e2e_pg', topicRefreshIntervalMs: 1000 },
    ]);
    const source = await startSourceRunner(cfg);
    stops.push(source.stop);
    const pgSink = startSink(cfg, 'pg', kafka);
    const mySink = startSink(cfg, 'my', kafka);
    stops.push(pgSink.stop, mySink.stop);

    // The slot exists once the source runs: write a probe until it reaches both replicas.
    let probe = 0;
    await until(
      'the pipeline to stream',
      async () => {
        await src.exec('insert into pairs values ($1, $2, 0) on conflict do nothing', [-1, `probe${probe++}`]);
        const a = await pgRep.query(`select count(*)::int as n from public.pairs`).catch(() => [{ n: 0 }]);
        const b = await myRep.query(`select count(*) as n from \`${myDb}\`.pairs`).catch(() => [{ n: 0 }]);
        return Number(a[0]!.n) > 0 && Number(b[0]!.n) > 0;
      },
      90_000,
      { everyMs: 1000 },
    );
    await src.exec('delete from pairs where a = -1');

    for (const s of TYPES_ROWS) await src.exec(s);
    for (const s of EDGE_ROWS) await src.exec(s);
    await src.exec(`insert into pairs values (1, 'x', 1), (1, 'y', 2), (2, 'x', 3)`);
    await src.exec(`update pairs set b = 'z' where a = 1 and b = 'x'`);
    await src.exec(`update pairs set v = v + 100 where a = 2`);
    await src.exec(`insert into "we""ird;tab le" values (1, 'a''; drop table x; --', 1), (2, 'b', 2)`);
    await src.exec(`update "we""ird;tab le" set "v'al" = 'c"d' where "co""l; x" = 1`);
    await src.exec(`delete from "we""ird;tab le" where "co""l; x" = 2`);
    await accountsWorkload(src, 60);

    const pgDiff = await waitForEqual(src, cfg.sinks[0]!, TABLES, pgRep.url.split('/').pop());
    expect(differences(pgDiff), describeDiff(pgDiff)).toBe(0);
    expect(pgDiff.find((t) => t.table === 'accounts')!.sourceRows).toBeGreaterThan(50);
    // the workload did produce unchanged-TOAST placeholders (which the sinks must not write); read only
    // once the replica is equal, so every event of the workload is in Kafka (not a racing high-water mark)
    const accountsTopic = sourceTopics(cfg.kafka.topicPrefix!, 'src').table(src.tableId('accounts'));
    const admin = kafka.admin();
    await admin.connect();
    const total = (await admin.fetchTopicOffsets(accountsTopic)).reduce((n, p) => n + Number(p.high), 0);
    await admin.disconnect();
    const records = await consumeN(kafka, accountsTopic, total);
    expect(records.filter((m) => m.value?.toString().includes(UNCHANGED)).length).toBeGreaterThan(0);

    const myTables = TABLES.filter((t) => t !== 'edge');
    const myDiff = await waitForEqual(src, cfg.sinks[1]!, myTables, undefined);
    expect(differences(myDiff), describeDiff(myDiff)).toBe(0);
    // the table and columns named with quotes, semicolons and spaces, row by row as text
    const weird = await src.rowsText(WEIRD, ['co"l; x']);
    expect(weird).toEqual([{ 'co"l; x': '1', "v'al": 'c"d', 'sp ace': '1' }]);
    expect(await pgRep.rows('public', WEIRD, ['co"l; x'])).toEqual(weird);
    expect(await myRep.rows(myDb, WEIRD, ['co"l; x'])).toEqual(weird);
    const edge = await myRep.query(`select id from \`${myDb}\`.edge order by id`);
    expect(edge.map((r) => Number(r.id))).toEqual([5]);
    const dead = await consumeN(kafka, pipelineTopics(cfg.kafka.topicPrefix!).deadLetter('my'), 4);
    expect(dead.map((m) => m.headers?.[DLQ_HEADER.reason]?.toString()).join('\n')).toMatch(/NaN|infinity|range|BC/i);
  });
});
