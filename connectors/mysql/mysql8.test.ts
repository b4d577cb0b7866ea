import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { ChangeEvent, TransactionEvent } from '../../schemas/change-event.js';
import type { SourceRecord } from '../source.js';
import { EventFramer, binlogDumpGtidPacket, binlogDumpPacket, registerSlavePacket } from './binlog-stream.js';
import { Collations } from './charset.js';
import { EV, decodeFormatDescription, decodeMysqlGtid, postHeaderLength } from './decode.js';
import { BinlogAssembler } from './events.js';
import { tableFilter } from './filter.js';
import { MysqlGtidSet } from './gtid.js';

/*
 * MySQL 8 paths no server here can produce: events built byte by byte from the binary log
 * format (libbinlogevents control_events.h / rows_event.h): FORMAT_DESCRIPTION with MySQL 8's
 * post-header lengths, GTID_LOG_EVENT with commit timestamps, QUERY BEGIN, TABLE_MAP with FULL
 * optional metadata (incl. COLUMN_VISIBILITY), WRITE_ROWS_V2 with a binary JSON column, XID.
 */

const A = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const u64 = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
};
const lenStr = (s: string) => Buffer.concat([Buffer.from([Buffer.byteLength(s)]), Buffer.from(s)]);

let logPos = 4;
function event(type: number, body: Buffer, opts: { serverId?: number; timestamp?: number; artificial?: boolean } = {}): Buffer {
  const size = 19 + body.length + 4;
  logPos += size;
  const h = Buffer.alloc(19);
  h.writeUInt32LE(opts.timestamp ?? 1_700_000_000, 0);
  h[4] = type;
  h.writeUInt32LE(opts.serverId ?? 1, 5);
  h.writeUInt32LE(size, 9);
  h.writeUInt32LE(opts.artificial ? 0 : logPos, 13);
  h.writeUInt16LE(opts.artificial ? 0x20 : 0, 17);
  const noCrc = Buffer.concat([h, body]);
  return Buffer.concat([noCrc, u32(crc32(noCrc) >>> 0)]);
}

/** Post-header lengths MySQL 8.0 writes, for event types 1..41. */
const MYSQL8_POST_HEADERS = [56, 13, 0, 8, 0, 0, 0, 0, 4, 0, 4, 0, 0, 0, 98, 0, 4, 26, 8, 0, 0, 0, 8, 8, 8, 2, 0, 0, 0, 10, 10, 10, 42, 42, 0, 18, 52, 0, 10, 40, 0];

function fde(): Buffer {
  const version = Buffer.alloc(50);
  version.write('8.0.36');
  return Buffer.concat([hex('0400'), version, u32(0), Buffer.from([19]), Buffer.from(MYSQL8_POST_HEADERS), Buffer.from([1])]);
}

function rotate(file: string): Buffer {
  return Buffer.concat([u64(4n), Buffer.from(file)]);
}

function gtidEvent(gno: bigint, originalUs: bigint, immediateUs: bigint): Buffer {
  const ts = (v: bigint) => Buffer.from(u64(v).subarray(0, 7));
  return Buffer.concat([
    Buffer.from([0x01]),
    Buffer.from(A.replace(/-/g, ''), 'hex'),
    u64(gno),
    Buffer.from([0x02]),
    u64(5n),
    u64(6n),
    ts(immediateUs | (1n << 55n)),
    ts(originalUs),
  ]);
}

function query(sql: string, db = ''): Buffer {
  return Buffer.concat([u32(42), u32(0), Buffer.from([Buffer.byteLength(db)]), hex('0000'), hex('0000'), Buffer.from(db), hex('00'), Buffer.from(sql)]);
}

const TABLE_ID = hex('5a0000000000');

function tableMap(): Buffer {
  const optional = Buffer.concat([
    hex('01 01 80'), // SIGNEDNESS: id unsigned (the only numeric column)
    hex('02 03 fcff00'), // DEFAULT_CHARSET: collation 255 (utf8mb4_0900_ai_ci) for the character column
    Buffer.concat([hex('04 0d'), lenStr('id'), lenStr('j'), lenStr('name'), lenStr('ts')]), // COLUMN_NAME
    hex('08 01 00'), // SIMPLE_PRIMARY_KEY: column 0
    hex('0c 01 f0'), // COLUMN_VISIBILITY: all four visible
  ]);
  return Buffer.concat([
    TABLE_ID,
    hex('0100'),
    lenStr('app'),
    hex('00'),
    lenStr('docs'),
    hex('00'),
    hex('04'), // columns
    hex('08 f5 0f 11'), // BIGINT, JSON, VARCHAR, TIMESTAMP2
    hex('04'), // metadata length
    hex('04 5000 03'), // JSON: 4 length bytes; VARCHAR(20) utf8mb4: 80 bytes; TIMESTAMP(3)
    hex('0e'), // nullable: j, name, ts
    optional,
  ]);
}

function writeRowsV2(): Buffer {
  const json = hex('00 0100 0c00 0b00 0100 05 0100 61'); // {"a": 1}
  const row = Buffer.concat([
    hex('00'), // null bitmap over 4 present columns
    hex('ffffffffffffffff'), // 18446744073709551615
    u32(json.length),
    json,
    lenStr('hello'),
    hex('6553f100 04ce'), // 1700000000 s + 1230 * 100 us
  ]);
  return Buffer.concat([TABLE_ID, hex('0100'), hex('0200'), hex('04'), hex('0f'), row]);
}

function assembler() {
  return new BinlogAssembler(
    { sourceName: 'my8', version: 'test', origin: 'my8', flavor: 'mysql', filter: tableFilter({ exclude: [] }), collations: new Collations(), now: () => 1 },
    { file: 'binlog.000006', pos: 4, gtidSet: `${A}:1-10` },
  );
}

describe('MySQL 8 binlog events (built from the format documentation)', () => {
  it('reads the MySQL 8 FORMAT_DESCRIPTION: v2 rows have 10-byte post-headers', () => {
    const f = decodeFormatDescription(Buffer.concat([fde(), u32(0)]));
    expect(f.serverVersion).toBe('8.0.36');
    expect(f.checksumAlg).toBe(1);
    expect(postHeaderLength(f, EV.WRITE_ROWS_V2, 0)).toBe(10);
    expect(postHeaderLength(f, EV.GTID, 0)).toBe(42);
  });

  it('decodes GTID_LOG_EVENT with logical clock and commit timestamps', () => {
    const g = decodeMysqlGtid(gtidEvent(11n, 1_700_000_000_123_456n, 1_700_000_000_223_456n));
    expect(g).toMatchObject({ uuid: A, gno: 11n, lastCommitted: 5n, sequenceNumber: 6n, originalCommitUs: 1_700_000_000_123_456n, immediateCommitUs: 1_700_000_000_223_456n });
  });

  it('streams a GTID transaction with v2 rows and binary JSON into change events and the next GTID set', () => {
    logPos = 4;
    const framer = new EventFramer('CRC32');
    const asm = assembler();
    const out: SourceRecord[] = [];
    const evs = [
      event(EV.ROTATE, rotate('binlog.000007'), { artificial: true, timestamp: 0 }),
      event(EV.FORMAT_DESCRIPTION, fde()),
      event(EV.GTID, gtidEvent(11n, 1_700_000_000_123_456n, 1_700_000_000_223_456n)),
      event(EV.QUERY, query('BEGIN')),
      event(EV.TABLE_MAP, tableMap()),
      event(EV.WRITE_ROWS_V2, writeRowsV2()),
      event(EV.XID, u64(77n)),
    ];
    const commits = evs.map((raw) => asm.handle(framer.frame(raw), out).commit).filter((c) => c !== null);
    const change = out.find((r) => r.type === 'change')!.event as ChangeEvent;
    expect(change.op).toBe('c');
    expect(change.after).toEqual({ id: '18446744073709551615', j: '{"a": 1}', name: 'hello', ts: '2023-11-14T22:13:20.123Z' });
    expect(change.schema.primaryKey).toEqual(['id']);
    expect(change.schema.columns.map((c) => [c.name, c.sourceType, c.nullable])).toEqual([
      ['id', 'bigint unsigned', false],
      ['j', 'json', true],
      ['name', 'varchar(20)', true],
      ['ts', 'timestamp(3)', true],
    ]);
    expect(change.source).toMatchObject({ connector: 'mysql', gtid: `${A}:11`, txId: `${A}:11`, file: 'binlog.000007', ts_ms: 1_700_000_000_123, ts_us: 1_700_000_000_123_456, row: 0 });
    expect(change.position).toMatchObject({ kind: 'mysql', gtid: `${A}:11`, seq: 0, file: 'binlog.000007' });
    const txs = out.filter((r) => r.type === 'transaction').map((r) => r.event as TransactionEvent);
    expect(txs.map((t) => t.status)).toEqual(['BEGIN', 'END']);
    expect(commits).toHaveLength(1);
    expect(commits[0]).toEqual({ kind: 'mysql', file: 'binlog.000007', pos: logPos, gtidSet: `${A}:1-11` });
  });

  it('treats DDL after a GTID as a standalone group, and ANONYMOUS_GTID as a transaction without GTID', () => {
    logPos = 4;
    const framer = new EventFramer('CRC32');
    const asm = assembler();
    const out: SourceRecord[] = [];
    asm.handle(framer.frame(event(EV.ROTATE, rotate('binlog.000007'), { artificial: true })), out);
    asm.handle(framer.frame(event(EV.FORMAT_DESCRIPTION, fde())), out);
    asm.handle(framer.frame(event(EV.GTID, gtidEvent(11n, 1n, 1n))), out);
    const ddl = asm.handle(framer.frame(event(EV.QUERY, query('ALTER TABLE docs ADD COLUMN x INT', 'app'))), out);
    expect(ddl.ddl).toMatchObject({ db: 'app', gtid: `${A}:11`, statement: { kind: 'alter-table', table: { db: null, table: 'docs' } } });
    expect(ddl.commit?.gtidSet).toBe(`${A}:1-11`);
    // gtid_mode=OFF: anonymous GTIDs; the transaction id is its file:position, positions carry no GTID set change.
    const anon = Buffer.concat([Buffer.from([0x01]), Buffer.alloc(16), u64(0n), Buffer.from([0x02]), u64(0n), u64(0n)]);
    asm.handle(framer.frame(event(EV.ANONYMOUS_GTID, anon)), out);
    const anonStart = logPos - (19 + anon.length + 4);
    asm.handle(framer.frame(event(EV.QUERY, query('BEGIN'))), out);
    asm.handle(framer.frame(event(EV.TABLE_MAP, tableMap())), out);
    asm.handle(framer.frame(event(EV.WRITE_ROWS_V2, writeRowsV2())), out);
    const end = asm.handle(framer.frame(event(EV.XID, u64(1n))), out);
    const change = out.filter((r) => r.type === 'change').map((r) => r.event as ChangeEvent)[0]!;
    expect(change.source.gtid).toBeNull();
    expect(change.source.txId).toBe(`binlog.000007:${anonStart}`);
    expect(end.commit?.gtidSet).toBe(`${A}:1-11`);
  });

  it('refuses PARTIAL_UPDATE_ROWS and TRANSACTION_PAYLOAD with the setting to change', () => {
    const framer = new EventFramer('CRC32');
    const asm = assembler();
    framer.frame(event(EV.FORMAT_DESCRIPTION, fde()));
    expect(() => asm.handle(framer.frame(event(EV.PARTIAL_UPDATE_ROWS, Buffer.alloc(12))), [])).toThrow(/binlog_row_value_options/);
    expect(() => asm.handle(framer.frame(event(EV.TRANSACTION_PAYLOAD, Buffer.alloc(12))), [])).toThrow(/binlog_transaction_compression=OFF/);
  });

  it('builds COM_REGISTER_SLAVE, COM_BINLOG_DUMP and COM_BINLOG_DUMP_GTID packets', () => {
    expect(registerSlavePacket(7, 'h', 'u', 3306).toString('hex')).toBe('15' + '07000000' + '0168' + '0175' + '00' + 'ea0c' + '00000000' + '00000000');
    expect(binlogDumpPacket(7, 'binlog.000002', 1234, 0).toString('hex')).toBe('12' + 'd2040000' + '0000' + '07000000' + Buffer.from('binlog.000002').toString('hex'));
    const set = MysqlGtidSet.parse(`${A}:1-5`);
    const p = binlogDumpGtidPacket(7, set);
    expect(p.toString('hex')).toBe(
      '1e' + '0400' + '07000000' + '00000000' + '0400000000000000' + u32(set.encode().length).toString('hex') + set.encode().toString('hex'),
    );
  });
});
