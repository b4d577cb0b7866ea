import { EventEmitter } from 'node:events';
import { crc32 } from 'node:zlib';
import mysql from 'mysql2';
import { CdcError } from '../../schemas/errors.js';
import {
  CHECKSUM_CRC32,
  CHECKSUM_OFF,
  EV,
  type EventHeader,
  type FormatDescription,
  HEADER_LEN,
  decodeFormatDescription,
  decodeHeader,
} from './decode.js';
import { mysqlError } from './errors.js';
import { MysqlGtidSet } from './gtid.js';

/**
 * The replication connection: our own binlog client on a mysql2 connection.
 *
 * mysql2 does the handshake and authentication (mysql_native_password, caching_sha2_password,
 * TLS); we then register as a replica and send COM_BINLOG_DUMP (MariaDB, or MySQL by file and
 * position) or COM_BINLOG_DUMP_GTID (MySQL by GTID set) as a custom command on that connection.
 * Every event's CRC32 is verified here. The socket is paused while more than `highWaterBytes`
 * of events wait to be taken, so a slow Kafka never makes the process buffer the binlog.
 */

export type Flavor = 'mariadb' | 'mysql';

export type StartPosition =
  /** MariaDB `@slave_connect_state` list, or a MySQL executed GTID set. */
  | { gtid: string; file?: string; pos?: number }
  /** Old-style coordinates (servers without GTIDs). */
  | { file: string; pos: number };

export interface BinlogStreamOptions {
  /** mysql:// URL of the source (user needs REPLICATION SLAVE). */
  url: string;
  /** server_id we register with; must be unique among the server's replicas. */
  serverId: number;
  /** Host name reported in COM_REGISTER_SLAVE (shows in SHOW SLAVE HOSTS). */
  reportHost: string;
  flavor: Flavor;
  start: StartPosition;
  /** Server heartbeat period when idle; the connection is declared dead after 3 missed ones. @defaultValue 10000 */
  heartbeatMs?: number;
  /** Ask MariaDB for ANNOTATE_ROWS events (the SQL text of row events). @defaultValue false */
  annotateRows?: boolean;
  /** Pause the socket when this many event bytes wait to be taken. @defaultValue 32 MiB */
  highWaterBytes?: number;
  /** mysql2 connect timeout. @defaultValue 10000 */
  connectTimeoutMs?: number;
}

export interface BinlogEvent {
  header: EventHeader;
  /** Event body: common header and checksum removed. */
  body: Buffer;
  /** Format description of the file the event came from (null only before the first one). */
  fde: FormatDescription | null;
  /** The whole event as received (header, body, checksum), for fixtures and diagnostics. */
  raw: Buffer;
}

/**
 * Frames raw events as the server sends them: tracks the checksum algorithm (the connect-time
 * setting until the first FORMAT_DESCRIPTION, then each file's own) and the current FDE.
 */
export class EventFramer {
  private alg: number;
  private fde: FormatDescription | null = null;
  constructor(checksumAtConnect: string) {
    this.alg = checksumAtConnect.toUpperCase() === 'CRC32' ? CHECKSUM_CRC32 : CHECKSUM_OFF;
  }
  frame(data: Buffer): BinlogEvent {
    const ev = splitEvent(data, this.alg);
    if (ev.fde) {
      this.fde = ev.fde;
      this.alg = ev.fde.checksumAlg;
    }
    return { header: ev.header, body: ev.body, fde: this.fde, raw: data };
  }
}

export interface BinlogStream {
  /** The next event, waiting for one; rejects with a CdcError when the stream broke; null after close(). */
  next(): Promise<BinlogEvent | null>;
  /** Events received and not yet taken. */
  readonly buffered: number;
  /** Server's checksum setting at connect time. */
  readonly checksumAtConnect: string;
  close(): Promise<void>;
}

// mysql2 internals we drive a custom command through (lib/base/connection.js).
interface Mysql2Packet {
  buffer: Buffer;
  start: number;
  end: number;
  isError(): boolean;
  asError(encoding?: string): Error;
}
interface Mysql2Internals {
  addCommand(cmd: unknown): unknown;
  writePacket(p: { buffer: Buffer; length(): number; writeHeader(seq: number): void; _name?: string }): void;
  _resetSequenceId(): void;
  pause(): void;
  resume(): void;
  destroy(): void;
  end(cb?: (err?: Error) => void): void;
  query(sql: string, cb: (err: Error | null, rows: unknown) => void): void;
  on(ev: string, fn: (...args: unknown[]) => void): void;
  once(ev: string, fn: (...args: unknown[]) => void): void;
  clientEncoding?: string;
}

/** A command packet as mysql2's writePacket wants it (length and header filled in by it). */
function outPacket(payload: Buffer) {
  const buffer = Buffer.alloc(4 + payload.length);
  payload.copy(buffer, 4);
  return {
    buffer,
    _name: 'cdc-binlog',
    length: () => buffer.length,
    writeHeader(seq: number) {
      buffer.writeUIntLE(buffer.length - 4, 0, 3);
      buffer[3] = seq;
    },
  };
}

/**
 * A command on a mysql2 connection: writes `payload`, then hands each response packet's payload
 * to `onPacket` until it returns false. Error packets end it through `onResult`.
 */
class RawCommand extends EventEmitter {
  private started = false;
  constructor(
    private readonly payload: Buffer,
    private readonly onPacket: (payload: Buffer, packet: Mysql2Packet) => boolean,
    readonly onResult: (err?: Error) => void,
  ) {
    super();
  }
  execute(packet: Mysql2Packet | undefined, conn: Mysql2Internals): boolean {
    if (!this.started) {
      this.started = true;
      conn._resetSequenceId();
      conn.writePacket(outPacket(this.payload));
      return false;
    }
    if (!packet) return false;
    if (packet.isError()) {
      this.onResult(packet.asError(conn.clientEncoding));
      return true;
    }
    const more = this.onPacket(packet.buffer.subarray(packet.start + 4, packet.end), packet);
    if (!more) this.onResult();
    return !more;
  }
}

function runCommand(conn: Mysql2Internals, payload: Buffer, onPacket: (p: Buffer) => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    conn.addCommand(new RawCommand(payload, onPacket, (err) => (err ? reject(err) : resolve())));
  });
}

function query<T = Record<string, unknown>[]>(conn: Mysql2Internals, sql: string): Promise<T> {
  return new Promise((resolve, reject) => conn.query(sql, (err, rows) => (err ? reject(err) : resolve(rows as T))));
}

function str8(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length > 255) throw new CdcError(`COM_REGISTER_SLAVE field too long: ${s.slice(0, 40)}...`);
  return Buffer.concat([Buffer.from([b.length]), b]);
}

export function registerSlavePacket(serverId: number, host: string, user: string, port: number): Buffer {
  const head = Buffer.alloc(5);
  head[0] = 0x15; // COM_REGISTER_SLAVE
  head.writeUInt32LE(serverId >>> 0, 1);
  const tail = Buffer.alloc(10);
  tail.writeUInt16LE(port & 0xffff, 0);
  tail.writeUInt32LE(0, 2); // replication rank (unused)
  tail.writeUInt32LE(0, 6); // master id (filled in by the server)
  // The password is never sent: the server ignores this field.
  return Buffer.concat([head, str8(host), str8(user), str8(''), tail]);
}

/** COM_BINLOG_DUMP: position u32, flags u16, server id u32, file name (rest). */
export function binlogDumpPacket(serverId: number, file: string, pos: number, flags: number): Buffer {
  const name = Buffer.from(file, 'utf8');
  const b = Buffer.alloc(11 + name.length);
  b[0] = 0x12;
  b.writeUInt32LE(pos >>> 0, 1);
  b.writeUInt16LE(flags, 5);
  b.writeUInt32LE(serverId >>> 0, 7);
  name.copy(b, 11);
  return b;
}

/** BINLOG_THROUGH_GTID: the data field holds the GTID set to exclude. */
const BINLOG_THROUGH_GTID = 0x04;

/** COM_BINLOG_DUMP_GTID: flags u16, server id u32, name size u32, name, pos u64, data size u32, data. */
export function binlogDumpGtidPacket(serverId: number, gtidSet: MysqlGtidSet, file = '', pos = 4): Buffer {
  const name = Buffer.from(file, 'utf8');
  const data = gtidSet.encode();
  const b = Buffer.alloc(1 + 2 + 4 + 4 + name.length + 8 + 4 + data.length);
  let o = 0;
  b[o++] = 0x1e;
  o = b.writeUInt16LE(BINLOG_THROUGH_GTID, o);
  o = b.writeUInt32LE(serverId >>> 0, o);
  o = b.writeUInt32LE(name.length, o);
  o += name.copy(b, o);
  o = b.writeBigUInt64LE(BigInt(pos), o);
  o = b.writeUInt32LE(data.length, o);
  data.copy(b, o);
  return b;
}

/** MariaDB BINLOG_SEND_ANNOTATE_ROWS_EVENT dump flag. */
const MARIA_SEND_ANNOTATE_ROWS = 0x02;
/** MARIA_SLAVE_CAPABILITY_MINE: GTIDs, annotate events, tolerates holes in the stream. */
const MARIA_SLAVE_CAPABILITY = 4;

/**
 * Verifies and strips one event's checksum. `alg` is the algorithm in force for this event: the
 * FDE states its own, other events follow the last FDE (before any: the connect-time setting).
 */
export function splitEvent(data: Buffer, alg: number): { header: EventHeader; body: Buffer; fde: FormatDescription | null } {
  const header = decodeHeader(data);
  if (header.eventSize !== data.length) {
    throw new CdcError(`binlog event size mismatch: header says ${header.eventSize} bytes, packet has ${data.length}`, { code: 'BINLOG_DECODE' });
  }
  let fde: FormatDescription | null = null;
  let effective = alg;
  if (header.type === EV.FORMAT_DESCRIPTION) {
    fde = decodeFormatDescription(data.subarray(HEADER_LEN));
    effective = fde.checksumAlg;
  }
  let end = data.length;
  if (effective === CHECKSUM_CRC32) {
    end -= 4;
    if (end < HEADER_LEN) throw new CdcError('binlog event too short for its checksum', { code: 'BINLOG_DECODE' });
    const want = data.readUInt32LE(end);
    const got = crc32(data.subarray(0, end)) >>> 0;
    if (want !== got) {
      throw new CdcError(`binlog event checksum mismatch (type ${header.type} at log_pos ${header.logPos}): expected ${want.toString(16)}, computed ${got.toString(16)}`, {
        code: 'BINLOG_CHECKSUM',
        retriable: true,
      });
    }
  }
  return { header, body: data.subarray(HEADER_LEN, end), fde };
}

export async function openBinlogStream(o: BinlogStreamOptions): Promise<BinlogStream> {
  const heartbeatMs = o.heartbeatMs ?? 10_000;
  const highWater = o.highWaterBytes ?? 32 * 1024 * 1024;
  const lowWater = highWater / 2;
  const parsed = new URL(o.url.replace(/^mariadb:/i, 'mysql:'));

  const conn = mysql.createConnection({
    uri: parsed.toString(),
    connectTimeout: o.connectTimeoutMs ?? 10_000,
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
  }) as unknown as Mysql2Internals;

  const queue: BinlogEvent[] = [];
  let head = 0;
  let queuedBytes = 0;
  let paused = false;
  let failure: CdcError | null = null;
  let closed = false;
  let waiter: { resolve: (e: BinlogEvent | null) => void; reject: (err: unknown) => void } | null = null;
  let lastPacketAt = Date.now();
  let watchdog: NodeJS.Timeout | undefined;

  const fail = (err: unknown, context: string) => {
    if (failure || closed) return;
    failure = mysqlError(err, context);
    if (watchdog) clearInterval(watchdog);
    if (waiter) {
      waiter.reject(failure);
      waiter = null;
    }
    try {
      conn.destroy();
    } catch {
      // already gone
    }
  };

  // Errors outside a command (socket reset while idle) come here.
  conn.on('error', (err) => fail(err, 'binlog connection'));

  await new Promise<void>((resolve, reject) => {
    conn.once('connect', () => resolve());
    conn.once('error', (err) => reject(mysqlError(err, `cannot connect to ${parsed.hostname}:${parsed.port || 3306}`)));
  });

  let checksumAtConnect = 'NONE';
  try {
    const [row] = await query<{ alg: string }[]>(conn, 'SELECT @@global.binlog_checksum AS alg');
    checksumAtConnect = String(row?.alg ?? 'NONE').toUpperCase();
    // Both names: MySQL 8.0.26+ reads @source_*, older MySQL and MariaDB @master_*.
    await query(conn, 'SET @master_binlog_checksum = @@global.binlog_checksum, @source_binlog_checksum = @@global.binlog_checksum');
    const periodNs = BigInt(heartbeatMs) * 1_000_000n;
    await query(conn, `SET @master_heartbeat_period = ${periodNs}, @source_heartbeat_period = ${periodNs}`);
    if (o.flavor === 'mariadb') {
      await query(conn, `SET @mariadb_slave_capability = ${MARIA_SLAVE_CAPABILITY}`);
      if ('gtid' in o.start && o.start.gtid !== undefined) {
        if (!/^[0-9,\-\s]*$/.test(o.start.gtid)) throw new CdcError(`not a MariaDB GTID position: ${o.start.gtid}`);
        await query(conn, `SET @slave_connect_state = '${o.start.gtid}'`);
        await query(conn, 'SET @slave_gtid_strict_mode = 0, @slave_gtid_ignore_duplicates = 0');
      }
    }
    await runCommand(conn, registerSlavePacket(o.serverId, o.reportHost, parsed.username, 0), () => false);
  } catch (err) {
    conn.destroy();
    throw mysqlError(err, 'binlog connection setup');
  }

  const framer = new EventFramer(checksumAtConnect);

  const onPacket = (payload: Buffer): boolean => {
    lastPacketAt = Date.now();
    if (failure || closed) return false;
    const marker = payload[0];
    if (marker === 0xfe && payload.length < 9) {
      fail(new CdcError('the server ended the binlog stream', { retriable: true }), 'binlog stream');
      return false;
    }
    if (marker !== 0x00) {
      fail(new CdcError(`unexpected binlog packet marker 0x${(marker ?? 0).toString(16)}`, { retriable: true }), 'binlog stream');
      return false;
    }
    try {
      // Copy: the packet is a view into the socket chunk, which would otherwise stay alive.
      const data = Buffer.from(payload.subarray(1));
      const event = framer.frame(data);
      if (waiter) {
        const w = waiter;
        waiter = null;
        w.resolve(event);
      } else {
        queue.push(event);
        queuedBytes += data.length;
        if (!paused && queuedBytes > highWater) {
          paused = true;
          conn.pause();
        }
      }
    } catch (err) {
      fail(err, 'binlog event');
      return false;
    }
    return true;
  };

  let dump: Buffer;
  if (o.flavor === 'mysql' && 'gtid' in o.start && o.start.gtid !== undefined) {
    dump = binlogDumpGtidPacket(o.serverId, MysqlGtidSet.parse(o.start.gtid));
  } else if (o.flavor === 'mariadb' && 'gtid' in o.start && o.start.gtid !== undefined) {
    // With @slave_connect_state set, MariaDB ignores file and position and finds the file itself.
    dump = binlogDumpPacket(o.serverId, '', 4, o.annotateRows ? MARIA_SEND_ANNOTATE_ROWS : 0);
  } else {
    const s = o.start as { file: string; pos: number };
    dump = binlogDumpPacket(o.serverId, s.file, s.pos, o.flavor === 'mariadb' && o.annotateRows ? MARIA_SEND_ANNOTATE_ROWS : 0);
  }
  runCommand(conn, dump, onPacket).then(
    () => fail(new CdcError('binlog dump ended', { retriable: true }), 'binlog stream'),
    (err) => fail(err, 'binlog dump'),
  );

  // The server sends a heartbeat after `heartbeatMs` of silence; three missed ones mean the
  // connection is dead even if TCP has not noticed (a half-open socket never errors).
  watchdog = setInterval(() => {
    if (!paused && Date.now() - lastPacketAt > 3 * heartbeatMs + 5_000) {
      fail(new CdcError(`no binlog data or heartbeat for ${Math.round((Date.now() - lastPacketAt) / 1000)} s`, { retriable: true }), 'binlog stream');
    }
  }, Math.min(heartbeatMs, 5_000));
  watchdog.unref();

  return {
    get buffered() {
      return queue.length - head;
    },
    checksumAtConnect,
    next() {
      if (head < queue.length) {
        const ev = queue[head]!;
        queue[head++] = undefined as unknown as BinlogEvent;
        queuedBytes -= ev.header.eventSize;
        if (head > 1024 && head * 2 > queue.length) {
          queue.splice(0, head);
          head = 0;
        }
        if (paused && queuedBytes < lowWater) {
          paused = false;
          lastPacketAt = Date.now();
          conn.resume();
        }
        return Promise.resolve(ev);
      }
      if (failure) return Promise.reject(failure);
      if (closed) return Promise.resolve(null);
      return new Promise((resolve, reject) => {
        waiter = { resolve, reject };
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      if (watchdog) clearInterval(watchdog);
      if (waiter) {
        waiter.resolve(null);
        waiter = null;
      }
      // A dump never ends by itself; destroying the socket is the clean way to stop it.
      conn.destroy();
    },
  };
}
