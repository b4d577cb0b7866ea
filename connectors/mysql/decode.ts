import { CdcError } from '../../schemas/errors.js';
import { MysqlGtidSet, uuidFromBytes } from './gtid.js';
import { Reader } from './reader.js';

/**
 * Binlog event decoders, written from the MySQL source documentation (libbinlogevents,
 * "Binary log format") and MariaDB's log_event.h. One function per event type; each takes the
 * event body (common header and checksum already removed by binlog-stream.ts).
 */

/** Event type codes of both dialects that this decoder knows about. */
export const EV = {
  UNKNOWN: 0,
  START_V3: 1,
  QUERY: 2,
  STOP: 3,
  ROTATE: 4,
  INTVAR: 5,
  RAND: 13,
  USER_VAR: 14,
  FORMAT_DESCRIPTION: 15,
  XID: 16,
  TABLE_MAP: 19,
  WRITE_ROWS_V0: 20,
  UPDATE_ROWS_V0: 21,
  DELETE_ROWS_V0: 22,
  WRITE_ROWS_V1: 23,
  UPDATE_ROWS_V1: 24,
  DELETE_ROWS_V1: 25,
  INCIDENT: 26,
  HEARTBEAT: 27,
  IGNORABLE: 28,
  ROWS_QUERY: 29,
  WRITE_ROWS_V2: 30,
  UPDATE_ROWS_V2: 31,
  DELETE_ROWS_V2: 32,
  GTID: 33,
  ANONYMOUS_GTID: 34,
  PREVIOUS_GTIDS: 35,
  TRANSACTION_CONTEXT: 36,
  VIEW_CHANGE: 37,
  XA_PREPARE: 38,
  PARTIAL_UPDATE_ROWS: 39,
  TRANSACTION_PAYLOAD: 40,
  HEARTBEAT_V2: 41,
  GTID_TAGGED: 42,
  // MariaDB
  MARIA_ANNOTATE_ROWS: 160,
  MARIA_BINLOG_CHECKPOINT: 161,
  MARIA_GTID: 162,
  MARIA_GTID_LIST: 163,
  MARIA_START_ENCRYPTION: 164,
  MARIA_QUERY_COMPRESSED: 165,
  MARIA_WRITE_ROWS_COMPRESSED_V1: 166,
  MARIA_UPDATE_ROWS_COMPRESSED_V1: 167,
  MARIA_DELETE_ROWS_COMPRESSED_V1: 168,
  MARIA_WRITE_ROWS_COMPRESSED: 169,
  MARIA_UPDATE_ROWS_COMPRESSED: 170,
  MARIA_DELETE_ROWS_COMPRESSED: 171,
} as const;

export const HEADER_LEN = 19;
/** Header flag: the event was made up by the server for the stream (fake ROTATE etc.); its log_pos is not a file position. */
export const LOG_EVENT_ARTIFICIAL_F = 0x20;

export interface EventHeader {
  /** Seconds since epoch: when the statement started on the originating server. */
  timestamp: number;
  type: number;
  serverId: number;
  /** Whole event size, header and checksum included. */
  eventSize: number;
  /** Position of the next event in the binlog file (0 for artificial events). */
  logPos: number;
  flags: number;
}

export function decodeHeader(buf: Buffer, offset = 0): EventHeader {
  if (buf.length - offset < HEADER_LEN) throw new CdcError(`binlog event shorter than its ${HEADER_LEN}-byte header`, { code: 'BINLOG_DECODE' });
  return {
    timestamp: buf.readUInt32LE(offset),
    type: buf[offset + 4]!,
    serverId: buf.readUInt32LE(offset + 5),
    eventSize: buf.readUInt32LE(offset + 9),
    logPos: buf.readUInt32LE(offset + 13),
    flags: buf.readUInt16LE(offset + 17),
  };
}

// ---------------------------------------------------------------------------------------------
// FORMAT_DESCRIPTION, ROTATE, QUERY, XID

export const CHECKSUM_OFF = 0;
export const CHECKSUM_CRC32 = 1;

export interface FormatDescription {
  binlogVersion: number;
  serverVersion: string;
  createTimestamp: number;
  headerLength: number;
  /** Post-header length per event type (index = type - 1). */
  postHeaderLengths: Buffer;
  /** 0 = none, 1 = CRC32. */
  checksumAlg: number;
}

/**
 * `body` is the whole event minus the common header, *including* the trailing checksum if any:
 * the FDE itself says whether events carry one, so the stream cannot strip it beforehand.
 */
export function decodeFormatDescription(body: Buffer): FormatDescription {
  const r = new Reader(body);
  const binlogVersion = r.u16('FDE binlog version');
  const serverVersion = r.bytes(50, 'FDE server version').toString('latin1').replace(/\0.*$/s, '');
  const createTimestamp = r.u32('FDE timestamp');
  const headerLength = r.u8('FDE header length');
  if (binlogVersion !== 4 || headerLength !== HEADER_LEN) {
    throw new CdcError(`unsupported binlog format (version ${binlogVersion}, header ${headerLength} bytes): needs binlog v4 (MySQL 5.0+ / MariaDB)`, { code: 'BINLOG_DECODE' });
  }
  // Since MySQL 5.6.1 / MariaDB 5.3 the FDE ends with the checksum algorithm byte and, when that
  // is CRC32, the 4-byte checksum; every server we support writes it.
  const rest = r.rest();
  if (rest.length < 1 + 4) throw new CdcError('FORMAT_DESCRIPTION event too short for a checksum algorithm byte', { code: 'BINLOG_DECODE' });
  const checksumAlg = rest[rest.length - 5]!;
  if (checksumAlg !== CHECKSUM_OFF && checksumAlg !== CHECKSUM_CRC32) {
    throw new CdcError(`unsupported binlog checksum algorithm ${checksumAlg}`, { code: 'BINLOG_DECODE' });
  }
  return { binlogVersion, serverVersion, createTimestamp, headerLength, postHeaderLengths: rest.subarray(0, rest.length - 5), checksumAlg };
}

export function postHeaderLength(fde: FormatDescription | null, type: number, fallback: number): number {
  const v = fde?.postHeaderLengths[type - 1];
  return v === undefined ? fallback : v;
}

export interface RotateEvent {
  position: number;
  nextFile: string;
}

export function decodeRotate(body: Buffer): RotateEvent {
  const r = new Reader(body);
  const position = Number(r.u64('ROTATE position'));
  return { position, nextFile: r.rest().toString('utf8') };
}

export interface QueryEvent {
  threadId: number;
  execTime: number;
  errorCode: number;
  /** Default database of the statement (`USE db`), '' if none. */
  db: string;
  query: string;
}

export function decodeQuery(body: Buffer, fde: FormatDescription | null): QueryEvent {
  const r = new Reader(body);
  const post = postHeaderLength(fde, EV.QUERY, 13);
  const threadId = r.u32('QUERY thread id');
  const execTime = r.u32('QUERY exec time');
  const dbLen = r.u8('QUERY db length');
  const errorCode = r.u16('QUERY error code');
  let statusLen = 0;
  if (post >= 13) statusLen = r.u16('QUERY status vars length');
  r.skip(post - Math.min(post, 13), 'QUERY post-header');
  r.skip(statusLen, 'QUERY status vars');
  const db = r.utf8(dbLen, 'QUERY db');
  r.skip(1, 'QUERY db terminator');
  // Statements are logged in the client's character set; DDL identifiers are utf8 in practice.
  const query = r.rest().toString('utf8');
  return { threadId, execTime, errorCode, db, query };
}

export function decodeXid(body: Buffer): bigint {
  return new Reader(body).u64('XID');
}

// ---------------------------------------------------------------------------------------------
// GTIDs

export interface MariaGtidEvent {
  seq: bigint;
  domain: number;
  flags: number;
  commitId?: bigint;
  /** Set for XA PREPARE / XA COMMIT event groups. */
  xid?: { formatId: number; gtrid: Buffer; bqual: Buffer };
}

/** MariaDB GTID flags2 bits. */
export const MARIA_GTID_FLAGS = {
  STANDALONE: 1,
  GROUP_COMMIT_ID: 2,
  TRANSACTIONAL: 4,
  ALLOW_PARALLEL: 8,
  WAITED: 16,
  DDL: 32,
  PREPARED_XA: 64,
  COMPLETED_XA: 128,
} as const;

export function decodeMariaGtid(body: Buffer): MariaGtidEvent {
  const r = new Reader(body);
  const seq = r.u64('GTID seq_no');
  const domain = r.u32('GTID domain');
  const flags = r.u8('GTID flags');
  const ev: MariaGtidEvent = { seq, domain, flags };
  if (flags & MARIA_GTID_FLAGS.GROUP_COMMIT_ID) ev.commitId = r.u64('GTID commit id');
  if (flags & (MARIA_GTID_FLAGS.PREPARED_XA | MARIA_GTID_FLAGS.COMPLETED_XA)) {
    const formatId = r.u32('XID format id');
    const gl = r.u8('XID gtrid length');
    const bl = r.u8('XID bqual length');
    ev.xid = { formatId, gtrid: r.bytes(gl, 'XID gtrid'), bqual: r.bytes(bl, 'XID bqual') };
  }
  return ev;
}

export function decodeMariaGtidList(body: Buffer): { domain: number; server: number; seq: bigint }[] {
  const r = new Reader(body);
  const count = r.u32('GTID_LIST count') & 0x0fffffff;
  const out: { domain: number; server: number; seq: bigint }[] = [];
  for (let i = 0; i < count; i++) out.push({ domain: r.u32('GTID_LIST domain'), server: r.u32('GTID_LIST server'), seq: r.u64('GTID_LIST seq') });
  return out;
}

export interface MysqlGtidEvent {
  /** Server UUID; all zeros for ANONYMOUS_GTID. */
  uuid: string;
  gno: bigint;
  flags: number;
  lastCommitted?: bigint;
  sequenceNumber?: bigint;
  /** Commit time on this server / the originating server, microseconds since epoch. */
  immediateCommitUs?: bigint;
  originalCommitUs?: bigint;
}

/** MySQL GTID_LOG_EVENT / ANONYMOUS_GTID_LOG_EVENT (libbinlogevents control_events.h Gtid_event). */
export function decodeMysqlGtid(body: Buffer): MysqlGtidEvent {
  const r = new Reader(body);
  const flags = r.u8('GTID flags');
  const uuid = uuidFromBytes(r.bytes(16, 'GTID sid'));
  const gno = r.u64('GTID gno');
  const ev: MysqlGtidEvent = { uuid, gno, flags };
  // Logical clock (5.7+): typecode 2, last_committed, sequence_number.
  if (r.remaining >= 17 && r.buf[r.pos] === 2) {
    r.skip(1);
    ev.lastCommitted = r.u64('GTID last_committed');
    ev.sequenceNumber = r.u64('GTID sequence_number');
  }
  // Commit timestamps (8.0.1+): 7 bytes each; the top bit of the first says the original one follows.
  if (r.remaining >= 7) {
    const lo = BigInt(r.u32('GTID immediate commit ts'));
    const hi = BigInt(r.u24('GTID immediate commit ts'));
    let immediate = (hi << 32n) | lo;
    const hasOriginal = (immediate & (1n << 55n)) !== 0n;
    immediate &= (1n << 55n) - 1n;
    ev.immediateCommitUs = immediate;
    ev.originalCommitUs = immediate;
    if (hasOriginal && r.remaining >= 7) {
      const lo2 = BigInt(r.u32('GTID original commit ts'));
      const hi2 = BigInt(r.u24('GTID original commit ts'));
      ev.originalCommitUs = (hi2 << 32n) | lo2;
    }
  }
  return ev;
}

export function decodePreviousGtids(body: Buffer): MysqlGtidSet {
  return MysqlGtidSet.decode(body);
}

/** MariaDB ANNOTATE_ROWS: the statement that produced the following rows events. */
export function decodeAnnotateRows(body: Buffer): string {
  return body.toString('utf8');
}

/** MySQL ROWS_QUERY: one length byte (truncated to 255, ignored) then the statement. */
export function decodeRowsQuery(body: Buffer): string {
  return body.subarray(1).toString('utf8');
}

// ---------------------------------------------------------------------------------------------
// TABLE_MAP

/** Binlog column type codes (enum_field_types). */
export const T = {
  DECIMAL: 0,
  TINY: 1,
  SHORT: 2,
  LONG: 3,
  FLOAT: 4,
  DOUBLE: 5,
  NULL: 6,
  TIMESTAMP: 7,
  LONGLONG: 8,
  INT24: 9,
  DATE: 10,
  TIME: 11,
  DATETIME: 12,
  YEAR: 13,
  NEWDATE: 14,
  VARCHAR: 15,
  BIT: 16,
  TIMESTAMP2: 17,
  DATETIME2: 18,
  TIME2: 19,
  TYPED_ARRAY: 20,
  MARIA_BLOB_COMPRESSED: 140,
  MARIA_VARCHAR_COMPRESSED: 141,
  VECTOR: 242,
  JSON: 245,
  NEWDECIMAL: 246,
  ENUM: 247,
  SET: 248,
  TINY_BLOB: 249,
  MEDIUM_BLOB: 250,
  LONG_BLOB: 251,
  BLOB: 252,
  VAR_STRING: 253,
  STRING: 254,
  GEOMETRY: 255,
} as const;

/** One column as the TABLE_MAP event describes it. */
export interface MapColumn {
  /** Type code in the event; for CHAR/ENUM/SET columns the event says STRING and `realType` tells which. */
  type: number;
  realType: number;
  /** Raw per-type metadata, already split: see `decodeColumnMeta`. */
  meta: ColumnMeta;
  nullable: boolean;
  /** From optional metadata (binlog_row_metadata=FULL), else undefined. */
  name?: string;
  unsigned?: boolean;
  /** Collation id (character and enum/set columns). */
  collation?: number;
  enumValues?: Buffer[];
  setValues?: Buffer[];
  geometryType?: number;
  visible?: boolean;
}

export interface ColumnMeta {
  /** VARCHAR / CHAR / BINARY: max length in bytes. */
  maxLength?: number;
  /** BLOB / TEXT / JSON / GEOMETRY: bytes of the length prefix (1..4). FLOAT/DOUBLE: pack length. */
  lengthBytes?: number;
  precision?: number;
  scale?: number;
  /** TIME2 / DATETIME2 / TIMESTAMP2 fractional digits. */
  fsp?: number;
  /** BIT(n): n. */
  bits?: number;
  /** ENUM / SET: bytes of the stored value. */
  packLength?: number;
}

export interface TableMapEvent {
  tableId: number;
  flags: number;
  db: string;
  table: string;
  columns: MapColumn[];
  /** Primary key column indexes (optional metadata), [] if none or not logged. */
  primaryKey: number[];
  /** Did the event carry column names (binlog_row_metadata=FULL)? */
  hasNames: boolean;
}

/** Optional metadata field types (rows_event.h Optional_metadata_field_type). */
const OM = {
  SIGNEDNESS: 1,
  DEFAULT_CHARSET: 2,
  COLUMN_CHARSET: 3,
  COLUMN_NAME: 4,
  SET_STR_VALUE: 5,
  ENUM_STR_VALUE: 6,
  GEOMETRY_TYPE: 7,
  SIMPLE_PRIMARY_KEY: 8,
  PRIMARY_KEY_WITH_PREFIX: 9,
  ENUM_AND_SET_DEFAULT_CHARSET: 10,
  ENUM_AND_SET_COLUMN_CHARSET: 11,
  COLUMN_VISIBILITY: 12,
} as const;

function decodeColumnMeta(r: Reader, type: number): { meta: ColumnMeta; realType: number } {
  switch (type) {
    case T.FLOAT:
    case T.DOUBLE:
      return { meta: { lengthBytes: r.u8('FLOAT meta') }, realType: type };
    case T.BLOB:
    case T.TINY_BLOB:
    case T.MEDIUM_BLOB:
    case T.LONG_BLOB:
    case T.GEOMETRY:
    case T.JSON:
    case T.VECTOR:
    case T.MARIA_BLOB_COMPRESSED:
      return { meta: { lengthBytes: r.u8('BLOB meta') }, realType: type };
    case T.VARCHAR:
    case T.VAR_STRING:
    case T.MARIA_VARCHAR_COMPRESSED:
      return { meta: { maxLength: r.u16('VARCHAR meta') }, realType: type };
    case T.BIT: {
      const bits = r.u8('BIT meta');
      const bytes = r.u8('BIT meta');
      return { meta: { bits: bytes * 8 + bits }, realType: type };
    }
    case T.NEWDECIMAL: {
      const precision = r.u8('DECIMAL precision');
      const scale = r.u8('DECIMAL scale');
      return { meta: { precision, scale }, realType: type };
    }
    case T.STRING:
    case T.ENUM:
    case T.SET: {
      // Two bytes, first the real type then the length; CHAR lengths > 255 fold their two high
      // bits into the real-type byte (sql/field.cc Field_string::save_field_metadata).
      const b0 = r.u8('STRING meta');
      const b1 = r.u8('STRING meta');
      let realType = b0;
      let length = b1;
      if ((b0 & 0x30) !== 0x30) {
        length = b1 | (((b0 & 0x30) ^ 0x30) << 4);
        realType = b0 | 0x30;
      }
      if (realType === T.ENUM || realType === T.SET) return { meta: { packLength: length }, realType };
      return { meta: { maxLength: length }, realType };
    }
    case T.TIME2:
    case T.DATETIME2:
    case T.TIMESTAMP2:
      return { meta: { fsp: r.u8('temporal fsp') }, realType: type };
    default:
      return { meta: {}, realType: type };
  }
}

function isNumeric(t: number): boolean {
  return t === T.TINY || t === T.SHORT || t === T.INT24 || t === T.LONG || t === T.LONGLONG || t === T.NEWDECIMAL || t === T.FLOAT || t === T.DOUBLE;
}

function isCharacter(c: MapColumn): boolean {
  return (c.realType === T.STRING || c.realType === T.VAR_STRING || c.realType === T.VARCHAR || c.realType === T.BLOB) && c.type !== T.GEOMETRY;
}

function isEnumOrSet(c: MapColumn): boolean {
  return c.realType === T.ENUM || c.realType === T.SET;
}

/** Default charset + exceptions, or one charset per column, over the columns `pick` selects. */
function assignCharsets(columns: MapColumn[], pick: (c: MapColumn) => boolean, value: Buffer, perColumn: boolean): void {
  const targets = columns.filter(pick);
  const r = new Reader(value);
  if (perColumn) {
    for (const c of targets) c.collation = r.lenenc('column charset');
    return;
  }
  const def = r.lenenc('default charset');
  for (const c of targets) c.collation = def;
  while (r.remaining > 0) {
    const idx = r.lenenc('charset column index');
    const coll = r.lenenc('charset collation');
    const c = targets[idx];
    if (c) c.collation = coll;
  }
}

function strValues(value: Buffer): Buffer[][] {
  const r = new Reader(value);
  const out: Buffer[][] = [];
  while (r.remaining > 0) {
    const n = r.lenenc('value count');
    const vals: Buffer[] = [];
    for (let i = 0; i < n; i++) vals.push(r.lenencString('value'));
    out.push(vals);
  }
  return out;
}

export function decodeTableMap(body: Buffer, fde: FormatDescription | null): TableMapEvent {
  const r = new Reader(body);
  const post = postHeaderLength(fde, EV.TABLE_MAP, 8);
  const tableId = post === 6 ? r.u32('table id') : r.u48('table id');
  const flags = r.u16('TABLE_MAP flags');
  const db = r.utf8(r.u8('db length'), 'db name');
  r.skip(1, 'db terminator');
  const table = r.utf8(r.u8('table length'), 'table name');
  r.skip(1, 'table terminator');
  const n = r.lenenc('column count');
  const types = r.bytes(n, 'column types');
  const metaLen = r.lenenc('metadata length');
  const metaEnd = r.pos + metaLen;
  const mr = new Reader(r.buf, r.pos, metaEnd);
  const columns: MapColumn[] = [];
  for (let i = 0; i < n; i++) {
    const type = types[i]!;
    const { meta, realType } = decodeColumnMeta(mr, type);
    columns.push({ type, realType, meta, nullable: false });
  }
  if (mr.remaining !== 0) throw new CdcError(`TABLE_MAP ${db}.${table}: ${mr.remaining} metadata bytes left over`, { code: 'BINLOG_DECODE' });
  r.pos = metaEnd;
  const nulls = r.bytes((n + 7) >> 3, 'null bitmap');
  for (let i = 0; i < n; i++) columns[i]!.nullable = (nulls[i >> 3]! & (1 << (i & 7))) !== 0;

  const primaryKey: number[] = [];
  let hasNames = false;
  while (r.remaining > 0) {
    const fieldType = r.u8('optional metadata type');
    const value = r.lenencString('optional metadata value');
    switch (fieldType) {
      case OM.SIGNEDNESS: {
        let bit = 0;
        for (const c of columns) {
          if (!isNumeric(c.type)) continue;
          c.unsigned = (value[bit >> 3]! & (0x80 >> (bit & 7))) !== 0;
          bit++;
        }
        break;
      }
      case OM.DEFAULT_CHARSET:
      case OM.COLUMN_CHARSET:
        assignCharsets(columns, isCharacter, value, fieldType === OM.COLUMN_CHARSET);
        break;
      case OM.ENUM_AND_SET_DEFAULT_CHARSET:
      case OM.ENUM_AND_SET_COLUMN_CHARSET:
        assignCharsets(columns, isEnumOrSet, value, fieldType === OM.ENUM_AND_SET_COLUMN_CHARSET);
        break;
      case OM.COLUMN_NAME: {
        const vr = new Reader(value);
        for (const c of columns) c.name = vr.lenencString('column name').toString('utf8');
        hasNames = true;
        break;
      }
      case OM.SET_STR_VALUE: {
        const lists = strValues(value);
        let i = 0;
        for (const c of columns) if (c.realType === T.SET) c.setValues = lists[i++] ?? [];
        break;
      }
      case OM.ENUM_STR_VALUE: {
        const lists = strValues(value);
        let i = 0;
        for (const c of columns) if (c.realType === T.ENUM) c.enumValues = lists[i++] ?? [];
        break;
      }
      case OM.GEOMETRY_TYPE: {
        const vr = new Reader(value);
        for (const c of columns) if (c.type === T.GEOMETRY) c.geometryType = vr.lenenc('geometry type');
        break;
      }
      case OM.SIMPLE_PRIMARY_KEY: {
        const vr = new Reader(value);
        while (vr.remaining > 0) primaryKey.push(vr.lenenc('primary key column'));
        break;
      }
      case OM.PRIMARY_KEY_WITH_PREFIX: {
        const vr = new Reader(value);
        while (vr.remaining > 0) {
          primaryKey.push(vr.lenenc('primary key column'));
          vr.lenenc('primary key prefix');
        }
        break;
      }
      case OM.COLUMN_VISIBILITY: {
        columns.forEach((c, i) => (c.visible = (value[i >> 3]! & (0x80 >> (i & 7))) !== 0));
        break;
      }
      default:
        // Newer servers may add fields; they are length-prefixed, so skipping them is safe.
        break;
    }
  }
  return { tableId, flags, db, table, columns, primaryKey, hasNames };
}

// ---------------------------------------------------------------------------------------------
// Rows events

export type RowsKind = 'write' | 'update' | 'delete';

export interface RowsEventHead {
  kind: RowsKind;
  tableId: number;
  flags: number;
  columnCount: number;
  /** Columns present in the (before) image. */
  present: Buffer;
  /** Columns present in the after image of an update. */
  presentAfter: Buffer | null;
  /** Offset in the body where the row images start. */
  rowsStart: number;
}

/** Rows event flag: this is the last rows event of the statement. */
export const ROWS_STMT_END_F = 1;

export function rowsKind(type: number): RowsKind | null {
  switch (type) {
    case EV.WRITE_ROWS_V1:
    case EV.WRITE_ROWS_V2:
      return 'write';
    case EV.UPDATE_ROWS_V1:
    case EV.UPDATE_ROWS_V2:
      return 'update';
    case EV.DELETE_ROWS_V1:
    case EV.DELETE_ROWS_V2:
      return 'delete';
    default:
      return null;
  }
}

/** The part of a WRITE/UPDATE/DELETE_ROWS (v1 or v2) event before the row images. */
export function decodeRowsHead(body: Buffer, type: number, fde: FormatDescription | null): RowsEventHead {
  const kind = rowsKind(type);
  if (kind === null) throw new CdcError(`event type ${type} is not a rows event`, { code: 'BINLOG_DECODE' });
  const v2 = type >= EV.WRITE_ROWS_V2;
  const r = new Reader(body);
  const post = postHeaderLength(fde, type, v2 ? 10 : 8);
  const tableId = post === 6 ? r.u32('rows table id') : r.u48('rows table id');
  const flags = r.u16('rows flags');
  if (v2) {
    // v2 carries extra data (NDB info, MySQL 8 partition info): a length that counts itself.
    const extraLen = r.u16('rows extra data length');
    if (extraLen < 2) throw new CdcError(`rows event: invalid extra data length ${extraLen}`, { code: 'BINLOG_DECODE' });
    r.skip(extraLen - 2, 'rows extra data');
  }
  const columnCount = r.lenenc('rows column count');
  const bitmapLen = (columnCount + 7) >> 3;
  const present = r.bytes(bitmapLen, 'columns present');
  const presentAfter = kind === 'update' ? r.bytes(bitmapLen, 'columns present (after)') : null;
  return { kind, tableId, flags, columnCount, present, presentAfter, rowsStart: r.pos };
}

export function bitSet(bitmap: Buffer, i: number): boolean {
  return (bitmap[i >> 3]! & (1 << (i & 7))) !== 0;
}
