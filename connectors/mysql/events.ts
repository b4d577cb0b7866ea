import { type PipelineConfig, schemaBytesPerRecord } from '../../config/schema.js';
import type { ChangeEvent, Op, SourceInfo, TransactionEvent } from '../../schemas/change-event.js';
import type { ColumnType, ColumnValue, Row } from '../../schemas/column-types.js';
import { CdcError } from '../../schemas/errors.js';
import type { MysqlPosition } from '../../schemas/position.js';
import type { ColumnSchema, TableSchema } from '../../schemas/table-schema.js';
import type { SourceRecord } from '../source.js';
import type { BinlogEvent, Flavor } from './binlog-stream.js';
import { type TableDefinition, tableKey } from './catalog.js';
import type { Collations } from './charset.js';
import { type Statement, parseStatement } from './ddl.js';
import {
  EV,
  LOG_EVENT_ARTIFICIAL_F,
  MARIA_GTID_FLAGS,
  type MapColumn,
  type TableMapEvent,
  bitSet,
  decodeMariaGtid,
  decodeMariaGtidList,
  decodeMysqlGtid,
  decodeQuery,
  decodeRotate,
  decodeRowsHead,
  decodeTableMap,
  rowsKind,
} from './decode.js';
import type { TableFilter } from './filter.js';
import { MariaGtidList, MysqlGtidSet, formatMariaGtid } from './gtid.js';
import { type SchemaState, latest } from './schema-history.js';
import { type ColumnCodec, type Cursor, anonymousColumnName, binlogColumn } from './type-map.js';

/**
 * Turns binlog events into SourceRecords: Debezium-shaped change events with canonical values
 * (decoded with the columns the TABLE_MAP says the row was written with), BEGIN/END transaction
 * metadata, and the resume position at each transaction end. Pure and synchronous: DDL work
 * (information_schema reads, schema-history writes) is handed back to the caller.
 */

/** A table as one TABLE_MAP event describes it. */
interface TableState {
  raw: Buffer;
  db: string;
  table: string;
  captured: boolean;
  map: TableMapEvent | null;
  /** Built lazily, against the schema-history version in `builtFor`. */
  codecs: ColumnCodec[] | null;
  names: string[];
  schema: TableSchema | null;
  schemaBytes: number;
  builtFor: number;
  collection: string;
}

interface OpenTransaction {
  gtid: string | null;
  /** MariaDB GTID of the group, to fold into the position at its end. */
  mariaGtid?: { domain: number; server: number; seq: bigint };
  mysqlGtid?: { uuid: string; gno: bigint };
  id: string;
  /** Inside BEGIN ... COMMIT (false for a standalone statement such as DDL). */
  inTxn: boolean;
  ts_ms: number;
  ts_us?: number;
  serverId: number;
  beginFile: string;
  beginPos: number;
  total: number;
  perTable: Map<string, number>;
  begun: boolean;
}

export interface DdlWork {
  statement: Statement;
  query: string;
  /** Default database of the statement. */
  db: string;
  /** Where the DDL's event starts, and its group's GTID: the schema-history key. */
  file: string;
  pos: number;
  gtid: string | null;
  ts_ms: number;
}

export interface Outcome {
  /** Estimated encoded size of the records appended (batch sizing). */
  bytes: number;
  /** `db.table` the appended change records belong to (they all go to its topic), if any. */
  table: string | null;
  /** Set when an event group ended: the position to resume from, covering everything so far. */
  commit: MysqlPosition | null;
  /** A schema-changing statement the caller must process before it publishes further. */
  ddl: DdlWork | null;
  heartbeat: boolean;
}

export interface AssemblerOptions {
  /** Sizes batches by the schema bytes each record carries (absent: the whole schema, inline). */
  pipeline?: Pick<PipelineConfig, 'kafka'>;
  sourceName: string;
  version: string;
  origin: string;
  /**
   * The source server's own server_id, set when only what local clients wrote is captured
   * (`sources[].localOnly`): row events and truncates written under another server_id (an apply
   * session that ran `SET SESSION server_id`, or a native replication thread) are skipped.
   */
  localServerId?: number;
  flavor: Flavor;
  filter: TableFilter;
  collations: Collations;
  /** Called once per table that is decoded without column names (binlog_row_metadata not FULL when written). */
  warn?: (msg: string, fields: Record<string, unknown>) => void;
  now?: () => number;
}

/** Fixed part of an encoded event (envelope keys, source block, position header) in bytes. */
const EVENT_OVERHEAD = 500;

/** Canonical JSON of a type (sorted keys), for comparing types built by different code paths. */
function typeKey(t: ColumnType): string {
  return JSON.stringify(t, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1))) : v,
  );
}

function uuidFromBase64(v: ColumnValue): ColumnValue {
  if (typeof v !== 'string') return v;
  const h = Buffer.from(v, 'base64').toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * The TABLE_MAP decides how bytes decode; the schema history adds what the binlog lacks (exact
 * column type text, defaults, MariaDB JSON and UUID columns). Column by column, the newest
 * recorded definition that agrees with the TABLE_MAP (same name, same neutral type, same
 * collation) is used; a column no definition agrees with keeps what the TABLE_MAP says.
 */
export function mergeWithHistory(codecs: ColumnCodec[], map: MapColumn[], chain: TableDefinition[]): ColumnCodec[] {
  if (chain.length === 0) return codecs;
  return codecs.map((c, i) => {
    const b = c.schema;
    const binlogCollation = map[i]?.collation;
    for (const def of chain) {
      const h = def.schema.columns.find((x) => x.name === b.name);
      if (!h) continue;
      const coll = def.collations[h.name];
      if (binlogCollation !== undefined && coll !== undefined && coll !== binlogCollation) continue;
      const extra: Partial<ColumnSchema> = { sourceType: h.sourceType, ...(h.defaultExpr !== undefined ? { defaultExpr: h.defaultExpr } : {}) };
      if (typeKey(b.type) === typeKey(h.type)) return { schema: { ...b, ...extra }, decode: c.decode };
      if (b.type.kind === 'string' && h.type.kind === 'json') return { schema: { ...b, ...extra, type: { kind: 'json' } }, decode: c.decode };
      if (b.type.kind === 'bytes' && b.type.fixed && b.type.length === 16 && h.type.kind === 'uuid') {
        const dec = c.decode;
        return { schema: { ...b, ...extra, type: { kind: 'uuid' } }, decode: (cur: Cursor) => uuidFromBase64(dec(cur)) };
      }
    }
    return c;
  });
}

export class BinlogAssembler {
  /** File of the event being read, and the position after the last event handled. */
  file = '';
  pos = 4;
  /** Executed GTIDs at the last group end. */
  readonly mariaGtids: MariaGtidList;
  readonly mysqlGtids: MysqlGtidSet;
  private tx: OpenTransaction | null = null;
  private readonly tables = new Map<number, TableState>();
  /** Latest table definitions by `tableKey`, from TABLE_MAPs (for truncates) and the history. */
  private readonly lastSchema = new Map<string, TableSchema>();
  private history: SchemaState = new Map();
  private historyVersion = 0;
  private readonly warned = new Set<string>();
  private readonly now: () => number;
  private lastHeartbeatTs = 0;
  /** Row events skipped because another server_id wrote them (`localServerId`). */
  skippedReplicated = 0;

  constructor(
    private readonly o: AssemblerOptions,
    start: { file: string; pos: number; gtidSet?: string },
  ) {
    this.now = o.now ?? Date.now;
    this.file = start.file;
    this.pos = start.pos;
    this.mariaGtids = o.flavor === 'mariadb' ? MariaGtidList.parse(start.gtidSet ?? '') : new MariaGtidList();
    this.mysqlGtids = o.flavor === 'mysql' ? MysqlGtidSet.parse(start.gtidSet ?? '') : new MysqlGtidSet();
  }

  get inTransaction(): boolean {
    return this.tx !== null;
  }

  /** The schema history in force; later TABLE_MAPs rebuild their schema against it. */
  setHistory(state: SchemaState): void {
    this.history = state;
    this.historyVersion++;
  }

  get historyState(): SchemaState {
    return this.history;
  }

  gtidSet(): string | undefined {
    const s = this.o.flavor === 'mariadb' ? this.mariaGtids.toString() : this.mysqlGtids.toString();
    return s === '' ? undefined : s;
  }

  position(): MysqlPosition {
    const gtidSet = this.gtidSet();
    return { kind: 'mysql', file: this.file, pos: this.pos, ...(gtidSet !== undefined ? { gtidSet } : {}) };
  }

  /** Drops a half-read event group (the stream broke; it is read again after reconnecting). */
  reset(): void {
    this.tx = null;
    this.tables.clear();
  }

  handle(ev: BinlogEvent, out: SourceRecord[]): Outcome {
    const h = ev.header;
    const res: Outcome = { bytes: 0, table: null, commit: null, ddl: null, heartbeat: false };
    const artificial = (h.flags & LOG_EVENT_ARTIFICIAL_F) !== 0 || h.logPos === 0;
    const start = h.logPos - h.eventSize;
    switch (h.type) {
      case EV.ROTATE: {
        const r = decodeRotate(ev.body);
        this.file = r.nextFile;
        this.pos = r.position;
        return res;
      }
      case EV.FORMAT_DESCRIPTION:
      case EV.STOP:
      case EV.MARIA_BINLOG_CHECKPOINT:
      case EV.MARIA_ANNOTATE_ROWS:
      case EV.ROWS_QUERY:
      case EV.PREVIOUS_GTIDS:
      case EV.INTVAR:
      case EV.RAND:
      case EV.USER_VAR:
      case EV.IGNORABLE:
      case EV.TRANSACTION_CONTEXT:
      case EV.VIEW_CHANGE:
        break;
      case EV.HEARTBEAT:
      case EV.HEARTBEAT_V2:
        res.heartbeat = true;
        // A heartbeat's log_pos is where the server is; it is not an event of the file.
        return res;
      case EV.MARIA_GTID_LIST:
        // The binlog state before this file: fills in domains we have never seen a GTID of.
        for (const g of decodeMariaGtidList(ev.body)) {
          if (!this.mariaGtids.contains({ ...g, seq: 0n }) && !this.hasDomain(g.domain)) this.mariaGtids.update(g);
        }
        break;
      case EV.MARIA_GTID: {
        const g = decodeMariaGtid(ev.body);
        const gtid = { domain: g.domain, server: h.serverId, seq: g.seq };
        const text = formatMariaGtid(gtid);
        // A non-standalone GTID replaces BEGIN: the group is a transaction.
        this.open(text, h.timestamp * 1000, undefined, h.serverId, start, (g.flags & MARIA_GTID_FLAGS.STANDALONE) === 0);
        this.tx!.mariaGtid = gtid;
        break;
      }
      case EV.GTID:
      case EV.ANONYMOUS_GTID: {
        const g = decodeMysqlGtid(ev.body);
        const anonymous = h.type === EV.ANONYMOUS_GTID || g.gno === 0n;
        const us = g.originalCommitUs ?? g.immediateCommitUs;
        this.open(anonymous ? null : `${g.uuid}:${g.gno}`, us !== undefined && us > 0n ? Number(us / 1000n) : h.timestamp * 1000, us !== undefined && us > 0n ? Number(us) : undefined, h.serverId, start, false);
        if (!anonymous) this.tx!.mysqlGtid = { uuid: g.uuid, gno: g.gno };
        break;
      }
      case EV.GTID_TAGGED:
        throw new CdcError('tagged GTIDs (MySQL 8.3+ GTID_TAGGED_LOG_EVENT) are not supported by the MySQL source', { retriable: false, code: 'UNSUPPORTED' });
      case EV.QUERY: {
        const q = decodeQuery(ev.body, ev.fde);
        this.query(q.query, q.db, h, start, out, res);
        break;
      }
      case EV.XID:
      case EV.XA_PREPARE:
        this.advance(h.logPos, artificial);
        this.commit(out, res);
        return res;
      case EV.TABLE_MAP:
        this.tableMap(ev);
        break;
      case EV.WRITE_ROWS_V1:
      case EV.UPDATE_ROWS_V1:
      case EV.DELETE_ROWS_V1:
      case EV.WRITE_ROWS_V2:
      case EV.UPDATE_ROWS_V2:
      case EV.DELETE_ROWS_V2:
        res.bytes += this.rows(ev, start, out, res);
        break;
      case EV.PARTIAL_UPDATE_ROWS:
        throw new CdcError('PARTIAL_UPDATE_ROWS event: set binlog_row_value_options=\'\' on the source (partial JSON updates are not supported)', { retriable: false, code: 'UNSUPPORTED' });
      case EV.TRANSACTION_PAYLOAD:
        throw new CdcError('TRANSACTION_PAYLOAD event: set binlog_transaction_compression=OFF on the source (compressed transactions are not supported)', { retriable: false, code: 'UNSUPPORTED' });
      case EV.MARIA_QUERY_COMPRESSED:
      case EV.MARIA_WRITE_ROWS_COMPRESSED_V1:
      case EV.MARIA_UPDATE_ROWS_COMPRESSED_V1:
      case EV.MARIA_DELETE_ROWS_COMPRESSED_V1:
      case EV.MARIA_WRITE_ROWS_COMPRESSED:
      case EV.MARIA_UPDATE_ROWS_COMPRESSED:
      case EV.MARIA_DELETE_ROWS_COMPRESSED:
        throw new CdcError('compressed binlog event: set log_bin_compress=OFF on the source (compressed events are not supported)', { retriable: false, code: 'UNSUPPORTED' });
      case EV.INCIDENT:
        throw new CdcError(
          `the source logged an INCIDENT event at ${this.file}:${start} (changes may be missing from the binlog): re-snapshot the source, then reset its offset past this position`,
          { retriable: false, code: 'BINLOG_INCIDENT' },
        );
      case EV.MARIA_START_ENCRYPTION:
        break;
      default:
        break;
    }
    this.advance(h.logPos, artificial);
    return res;
  }

  private hasDomain(domain: number): boolean {
    return this.mariaGtids.toString().split(',').some((g) => g.startsWith(`${domain}-`));
  }

  private advance(logPos: number, artificial: boolean): void {
    if (!artificial && logPos > 0) this.pos = logPos;
  }

  private open(gtid: string | null, ts_ms: number, ts_us: number | undefined, serverId: number, start: number, inTxn: boolean): void {
    this.tx = {
      gtid,
      id: gtid ?? `${this.file}:${start}`,
      inTxn,
      ts_ms,
      ...(ts_us !== undefined ? { ts_us } : {}),
      serverId,
      beginFile: this.file,
      beginPos: start,
      total: 0,
      perTable: new Map(),
      begun: false,
    };
  }

  /** The open group, or an implicit one (servers without GTID events, events after a standalone DDL). */
  private current(h: { timestamp: number; serverId: number }, start: number): OpenTransaction {
    if (!this.tx) this.open(null, h.timestamp * 1000, undefined, h.serverId, start, true);
    return this.tx!;
  }

  private query(sql: string, db: string, h: BinlogEvent['header'], start: number, out: SourceRecord[], res: Outcome): void {
    const st = parseStatement(sql);
    const tx = this.current(h, start);
    const endGroup = () => {
      this.advance(h.logPos, false);
      this.commit(out, res);
    };
    switch (st.kind) {
      case 'begin':
        tx.inTxn = true;
        return;
      case 'commit':
      case 'rollback':
        endGroup();
        return;
      case 'savepoint':
        return;
      case 'xa':
        if (st.action === 'start') tx.inTxn = true;
        else if (st.action !== 'end') endGroup();
        return;
      case 'truncate': {
        const tdb = st.table.db ?? db;
        if (this.o.filter(tdb, st.table.table)) {
          res.bytes += this.truncate(tx, tdb, st.table.table, h.serverId, start, out);
          res.table = `${tdb}.${st.table.table}`;
        }
        if (!tx.inTxn) endGroup();
        return;
      }
      case 'other': {
        if (/^\s*(INSERT|UPDATE|DELETE|REPLACE|LOAD)\b/i.test(sql) && this.o.filter.database(db)) {
          this.warnOnce(`stmt:${db}`, 'statement-based DML in the binlog is not captured (binlog_format must be ROW for every session)', { db, statement: sql.slice(0, 200) });
        }
        if (!tx.inTxn) endGroup();
        return;
      }
      default: {
        // Schema change (or a statement we could not read, treated as one).
        res.ddl = { statement: st, query: sql, db, file: this.file, pos: start, gtid: tx.gtid, ts_ms: h.timestamp * 1000 };
        if (st.kind === 'create-table' && st.startsTransaction) tx.inTxn = true;
        // Table ids are reassigned after DDL; old TABLE_MAP states are useless from here on.
        this.tables.clear();
        if (!tx.inTxn) endGroup();
      }
    }
  }

  private tableMap(ev: BinlogEvent): void {
    const post = ev.fde?.postHeaderLengths[EV.TABLE_MAP - 1] ?? 8;
    const tableId = post === 6 ? ev.body.readUInt32LE(0) : ev.body.readUIntLE(0, 6);
    const cached = this.tables.get(tableId);
    if (cached && cached.raw.equals(ev.body)) return;
    // db and table names come first: decide on capture before decoding the rest.
    const off = post;
    const dbLen = ev.body[off]!;
    const db = ev.body.toString('utf8', off + 1, off + 1 + dbLen);
    const tLen = ev.body[off + 2 + dbLen]!;
    const table = ev.body.toString('utf8', off + 3 + dbLen, off + 3 + dbLen + tLen);
    const captured = this.o.filter(db, table);
    this.tables.set(tableId, {
      raw: ev.body,
      db,
      table,
      captured,
      map: captured ? decodeTableMap(ev.body, ev.fde) : null,
      codecs: null,
      names: [],
      schema: null,
      schemaBytes: 0,
      builtFor: -1,
      collection: `${db}.${table}`,
    });
  }

  private build(t: TableState): void {
    const map = t.map!;
    const key = tableKey(t.db, t.table);
    const chain = this.history.get(key) ?? [];
    const hist = chain[0]?.schema;
    if (!map.hasNames) {
      this.warnOnce(`names:${key}`, 'TABLE_MAP without column names (written while binlog_row_metadata was not FULL): column names and key come from the schema history', {
        table: t.collection,
      });
    }
    let codecs = map.columns.map((c, i) => {
      const name = c.name ?? hist?.columns[i]?.name ?? anonymousColumnName(i);
      return binlogColumn(c, name, this.o.collations);
    });
    codecs = mergeWithHistory(codecs, map.columns, chain);
    const names = codecs.map((c) => c.schema.name);
    const primaryKey = map.hasNames ? map.primaryKey.map((i) => names[i]!).filter((n) => n !== undefined) : (hist?.primaryKey ?? []).filter((k) => names.includes(k));
    const schema: TableSchema = { id: { db: t.db, schema: null, table: t.table }, columns: codecs.map((c) => c.schema), primaryKey, dialect: 'mysql' };
    // Keep one schema object while the shape is unchanged: the codec caches its JSON by identity.
    const prev = this.lastSchema.get(key);
    const same = prev && JSON.stringify(prev) === JSON.stringify(schema);
    t.schema = same ? prev : schema;
    if (!same) this.lastSchema.set(key, schema);
    t.codecs = codecs;
    t.names = names;
    t.schemaBytes = schemaBytesPerRecord(this.o.pipeline, () => JSON.stringify(t.schema));
    t.builtFor = this.historyVersion;
  }

  private begin(tx: OpenTransaction, out: SourceRecord[]): void {
    if (tx.begun) return;
    tx.begun = true;
    const event: TransactionEvent = {
      status: 'BEGIN',
      id: tx.id,
      event_count: null,
      data_collections: null,
      ts_ms: tx.ts_ms,
      source: this.o.sourceName,
      position: { kind: 'mysql', file: tx.beginFile, pos: tx.beginPos, ...(tx.gtid ? { gtid: tx.gtid } : {}) },
    };
    out.push({ type: 'transaction', event });
  }

  private emit(tx: OpenTransaction, t: { schema: TableSchema; collection: string }, op: Op, before: Row | null, after: Row | null, serverId: number, pos: number, row: number, out: SourceRecord[]): void {
    this.begin(tx, out);
    const seq = tx.total++;
    const perTable = (tx.perTable.get(t.collection) ?? 0) + 1;
    tx.perTable.set(t.collection, perTable);
    const source: SourceInfo = {
      version: this.o.version,
      connector: 'mysql',
      name: this.o.sourceName,
      ts_ms: tx.ts_ms,
      ...(tx.ts_us !== undefined ? { ts_us: tx.ts_us } : {}),
      snapshot: 'false',
      db: t.schema.id.db,
      schema: null,
      table: t.schema.id.table,
      txId: tx.id,
      file: this.file,
      pos,
      row,
      gtid: tx.gtid,
      server_id: serverId,
      origin: this.o.origin,
    };
    const event: ChangeEvent = {
      op,
      before,
      after,
      source,
      ts_ms: this.now(),
      transaction: { id: tx.id, total_order: seq + 1, data_collection_order: perTable },
      schema: t.schema,
      position: { kind: 'mysql', file: this.file, pos, ...(tx.gtid ? { gtid: tx.gtid } : {}), seq },
    };
    out.push({ type: 'change', event });
  }

  private rows(ev: BinlogEvent, start: number, out: SourceRecord[], res: Outcome): number {
    const head = decodeRowsHead(ev.body, ev.header.type, ev.fde);
    const t = this.tables.get(head.tableId);
    if (!t) throw new CdcError(`rows event for table id ${head.tableId} without its TABLE_MAP (at ${this.file}:${start})`, { retriable: true, code: 'BINLOG_DECODE' });
    if (!t.captured) return 0;
    if (this.o.localServerId !== undefined && ev.header.serverId !== this.o.localServerId) {
      this.skippedReplicated++;
      return 0;
    }
    if (t.builtFor !== this.historyVersion || !t.codecs) this.build(t);
    const codecs = t.codecs!;
    const tx = this.current(ev.header, start);
    if (head.columnCount !== codecs.length) {
      throw new CdcError(`rows event for ${t.collection} has ${head.columnCount} columns, its TABLE_MAP ${codecs.length}`, { retriable: false, code: 'BINLOG_DECODE' });
    }
    const kind = rowsKind(ev.header.type)!;
    const c: Cursor = { buf: ev.body, pos: head.rowsStart };
    let bytes = 0;
    let row = 0;
    const sized = { schema: t.schema!, collection: t.collection };
    try {
      while (c.pos < ev.body.length) {
        const at = c.pos;
        const first = this.image(c, head.present, codecs);
        let op: Op;
        let before: Row | null = null;
        let after: Row | null = null;
        if (kind === 'write') {
          op = 'c';
          after = first;
        } else if (kind === 'delete') {
          op = 'd';
          before = first;
        } else {
          op = 'u';
          before = first;
          after = this.image(c, head.presentAfter!, codecs);
        }
        this.emit(tx, sized, op, before, after, ev.header.serverId, start, row++, out);
        bytes += Math.ceil((c.pos - at) * 1.5) + EVENT_OVERHEAD + t.schemaBytes * (op === 'd' ? 2 : 1);
      }
    } catch (err) {
      if (err instanceof CdcError && err.code !== 'BINLOG_DECODE') throw err;
      throw new CdcError(`cannot decode a row of ${t.collection} at ${this.file}:${start} (row ${row}): ${(err as Error).message}`, {
        retriable: false,
        code: 'BINLOG_DECODE',
        cause: err,
      });
    }
    return bytes;
  }

  /** One row image: null bitmap over the present columns, then their values. */
  private image(c: Cursor, present: Buffer, codecs: ColumnCodec[]): Row {
    let presentCount = 0;
    for (let i = 0; i < codecs.length; i++) if (bitSet(present, i)) presentCount++;
    const nullBytes = (presentCount + 7) >> 3;
    if (c.pos + nullBytes > c.buf.length) throw new CdcError('row image truncated in its null bitmap', { code: 'BINLOG_DECODE' });
    const nullStart = c.pos;
    c.pos += nullBytes;
    const row: Row = {};
    let k = 0;
    for (let i = 0; i < codecs.length; i++) {
      if (!bitSet(present, i)) continue; // not in the image (binlog_row_image=MINIMAL)
      const isNull = (c.buf[nullStart + (k >> 3)]! & (1 << (k & 7))) !== 0;
      k++;
      const codec = codecs[i]!;
      row[codec.schema.name] = isNull ? null : codec.decode(c);
    }
    return row;
  }

  private truncate(tx: OpenTransaction, db: string, table: string, serverId: number, start: number, out: SourceRecord[]): number {
    if (this.o.localServerId !== undefined && serverId !== this.o.localServerId) return 0;
    const key = tableKey(db, table);
    const schema = this.lastSchema.get(key) ?? latest(this.history, key);
    if (!schema) {
      this.warnOnce(`trunc:${key}`, 'TRUNCATE of a table whose columns are not known yet: no truncate event published', { table: `${db}.${table}` });
      return 0;
    }
    this.emit(tx, { schema, collection: `${db}.${table}` }, 't', null, null, serverId, start, 0, out);
    return EVENT_OVERHEAD + JSON.stringify(schema).length;
  }

  /** Ends the event group: folds its GTID into the position, closes BEGIN with END. */
  private commit(out: SourceRecord[], res: Outcome): void {
    const tx = this.tx;
    this.tx = null;
    if (tx?.mariaGtid) this.mariaGtids.update(tx.mariaGtid);
    if (tx?.mysqlGtid) this.mysqlGtids.add(tx.mysqlGtid.uuid, tx.mysqlGtid.gno);
    const position = this.position();
    if (tx?.begun) {
      const event: TransactionEvent = {
        status: 'END',
        id: tx.id,
        event_count: tx.total,
        data_collections: [...tx.perTable].map(([data_collection, event_count]) => ({ data_collection, event_count })),
        ts_ms: tx.ts_ms,
        source: this.o.sourceName,
        position: { ...position, ...(tx.gtid ? { gtid: tx.gtid } : {}) },
      };
      out.push({ type: 'transaction', event });
    }
    res.commit = position;
  }

  /** Heartbeat record for the current position (at a group boundary). */
  heartbeat(out: SourceRecord[]): void {
    const ts_ms = this.now();
    this.lastHeartbeatTs = ts_ms;
    out.push({ type: 'heartbeat', position: this.position(), ts_ms });
  }

  get lastHeartbeat(): number {
    return this.lastHeartbeatTs;
  }

  private warnOnce(key: string, msg: string, fields: Record<string, unknown>): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.o.warn?.(msg, fields);
  }
}
