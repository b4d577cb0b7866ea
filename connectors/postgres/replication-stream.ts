import pg from 'pg';
import { CdcError } from '../../schemas/errors.js';
import { type PgoutputMessage, decodeFrame, decodePgoutput, encodeStatusUpdate } from './decode.js';
import { pgError } from './errors.js';
import { type Lsn, formatLsn, maxLsn, parseLsn } from './lsn.js';

/**
 * A logical replication connection on `pg` (a `replication: 'database'` client), with our own
 * CopyBoth loop instead of pg-logical-replication: that library's keepalive timer reports the
 * last *received* LSN as flushed (upstream issue #174), which could let the slot skip changes
 * Kafka never got. Here the only LSN ever reported as flushed is the one the caller confirmed.
 */

/**
 * Session settings of the walsender, so its output functions print the forms `values.ts`
 * parses, whatever the server's or the role's defaults are.
 */
export const REPLICATION_SESSION_OPTIONS =
  '-c DateStyle=ISO -c IntervalStyle=iso_8601 -c TimeZone=UTC -c extra_float_digits=3 -c bytea_output=hex';

/** Query results as raw text: node-postgres' global type parsers never touch our values. */
export const RAW_TYPES = { getTypeParser: () => (v: string) => v };

/**
 * Ends a client, and destroys its socket if the server does not answer the goodbye in time: on a
 * half-open connection `end()` alone would wait forever.
 */
export async function endClient(client: pg.Client, timeoutMs = 2000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const ended = client.end().then(
    () => true,
    () => true,
  );
  const late = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs)));
  const ok = await Promise.race([ended, late]);
  clearTimeout(timer);
  if (!ok) (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}

export interface SystemIdentity {
  systemId: string;
  timeline: number;
  xlogpos: Lsn;
  dbname: string | null;
}

export interface CreatedSlot {
  slotName: string;
  consistentPoint: Lsn;
  /** Exported snapshot name, valid until the next command on this connection. */
  snapshotName: string | null;
}

/** What the stream delivers, in wire order. */
export type StreamItem =
  | { kind: 'xlog'; dataStart: Lsn; walEnd: Lsn; msg: PgoutputMessage; size: number }
  | { kind: 'keepalive'; walEnd: Lsn; replyRequested: boolean }
  | { kind: 'end'; error: CdcError | null }
  /** `interrupt()` was called: the caller has something else to look at (no data consumed). */
  | { kind: 'wake' };

export interface ReplicationStreamOptions {
  /**
   * Pause reading the socket when this many wire bytes of decoded-but-unprocessed messages queue
   * up. Decoded, a message takes some 4x its wire size. @defaultValue 1 MiB
   */
  highWaterBytes?: number;
  /** Standby status update period, also the liveness signal for wal_sender_timeout. @defaultValue 10000 */
  statusIntervalMs?: number;
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function quoteLiteral(v: string): string {
  return `'${v.replace(/'/g, "''")}'`;
}

export class ReplicationConnection {
  private readonly client: pg.Client;
  private closed = false;
  private lastError: CdcError | null = null;

  private constructor(client: pg.Client) {
    this.client = client;
    // An 'error' event without a listener would crash the process; the stream reports it instead.
    client.on('error', (err) => {
      this.lastError = pgError(err, 'replication connection');
    });
  }

  static async open(url: string, applicationName: string, connectTimeoutMs = 10_000): Promise<ReplicationConnection> {
    const client = new pg.Client({
      connectionString: url,
      replication: 'database',
      application_name: applicationName,
      options: REPLICATION_SESSION_OPTIONS,
      connectionTimeoutMillis: connectTimeoutMs,
      keepAlive: true,
      types: RAW_TYPES,
    } as pg.ClientConfig);
    const conn = new ReplicationConnection(client);
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => undefined);
      throw pgError(err, 'connecting for replication');
    }
    return conn;
  }

  private async command(sql: string): Promise<Record<string, string | null>[]> {
    try {
      const res = await this.client.query({ text: sql, types: RAW_TYPES });
      return res.rows as Record<string, string | null>[];
    } catch (err) {
      throw pgError(err, sql.split(' ').slice(0, 2).join(' '));
    }
  }

  async identifySystem(): Promise<SystemIdentity> {
    const [row] = await this.command('IDENTIFY_SYSTEM');
    if (!row) throw new CdcError('IDENTIFY_SYSTEM returned no row', { retriable: true });
    return { systemId: row.systemid ?? '', timeline: Number(row.timeline), xlogpos: parseLsn(row.xlogpos ?? '0/0'), dbname: row.dbname ?? null };
  }

  /**
   * CREATE_REPLICATION_SLOT ... LOGICAL pgoutput. With `exportSnapshot` the server exports a
   * snapshot consistent with the slot's start; it stays usable (SET TRANSACTION SNAPSHOT on
   * other connections) until this connection runs its next command.
   */
  async createSlot(slot: string, exportSnapshot: boolean): Promise<CreatedSlot> {
    const [row] = await this.command(
      // The pre-15 spelling: PostgreSQL 15 still accepts it, 10-14 accept only it.
      `CREATE_REPLICATION_SLOT ${quoteIdent(slot)} LOGICAL pgoutput ${exportSnapshot ? 'EXPORT_SNAPSHOT' : 'NOEXPORT_SNAPSHOT'}`,
    );
    if (!row) throw new CdcError('CREATE_REPLICATION_SLOT returned no row', { retriable: true });
    return { slotName: row.slot_name ?? slot, consistentPoint: parseLsn(row.consistent_point ?? '0/0'), snapshotName: row.snapshot_name ?? null };
  }

  /**
   * START_REPLICATION and the CopyBoth loop. Messages are decoded as they arrive (pg reuses its
   * read buffer) and queued; the socket is paused while the queue holds more than
   * `highWaterBytes`, so a slow Kafka pushes back through TCP to the walsender instead of
   * filling memory.
   */
  startReplication(slot: string, startLsn: Lsn, publications: string[], opts: ReplicationStreamOptions = {}): ReplicationStream {
    const pubList = publications.map((p) => quoteIdent(p)).join(',');
    const sql =
      `START_REPLICATION SLOT ${quoteIdent(slot)} LOGICAL ${formatLsn(startLsn)} ` +
      `(proto_version '1', publication_names ${quoteLiteral(pubList)}, messages 'false')`;
    return new ReplicationStream(this.client, sql, opts, () => this.lastError);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await endClient(this.client);
  }
}

interface PgConnectionInternals {
  on(event: 'copyData', fn: (msg: { chunk: Buffer }) => void): void;
  removeAllListeners(event: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  stream: { pause(): void; resume(): void; isPaused?(): boolean };
}

export class ReplicationStream {
  private readonly conn: PgConnectionInternals;
  private readonly queue: StreamItem[] = [];
  private head = 0;
  private queuedBytes = 0;
  private paused = false;
  private waiter: ((item: StreamItem) => void) | null = null;
  private woken = false;
  private ended = false;
  private readonly highWater: number;
  private readonly timer: NodeJS.Timeout;
  /** Highest LSN seen on the wire (reported as written, informational). */
  private received: Lsn = 0n;
  /** Highest LSN the caller confirmed: the only LSN ever reported as flushed. */
  private confirmed: Lsn = 0n;
  private lastSent: Lsn = -1n;
  private lastHeard = Date.now();

  constructor(
    private readonly client: pg.Client,
    sql: string,
    opts: ReplicationStreamOptions,
    lastError: () => CdcError | null,
  ) {
    this.highWater = opts.highWaterBytes ?? 1024 * 1024;
    this.conn = (client as unknown as { connection: PgConnectionInternals }).connection;
    this.conn.on('copyData', ({ chunk }) => this.onCopyData(chunk));
    const interval = opts.statusIntervalMs ?? 10_000;
    this.timer = setInterval(() => this.tick(interval), interval);
    this.timer.unref();
    client
      .query(sql)
      .then(
        () => this.finish(lastError()),
        (err: unknown) => this.finish(pgError(err, 'START_REPLICATION')),
      )
      .catch(() => undefined);
  }

  /**
   * Status update on every tick, and a watchdog: a connection that stays silent while we read
   * (a half-open TCP connection, a hung server) gets a reply request, then is given up on, so the
   * runner reconnects instead of waiting forever. Time spent paused by our own back-pressure does
   * not count.
   */
  private tick(interval: number): void {
    const silentMs = this.paused ? 0 : Date.now() - this.lastHeard;
    if (this.paused) this.lastHeard = Date.now();
    if (silentMs > 6 * interval) {
      this.finish(new CdcError(`no message from the walsender for ${Math.round(silentMs / 1000)} s`, { retriable: true, code: 'PG_STREAM_SILENT' }));
      return;
    }
    this.sendStatus(silentMs > 3 * interval);
  }

  private onCopyData(chunk: Buffer): void {
    if (this.ended) return;
    this.lastHeard = Date.now();
    let item: StreamItem;
    try {
      const frame = decodeFrame(chunk);
      if (frame.kind === 'xlog') {
        item = { kind: 'xlog', dataStart: frame.dataStart, walEnd: frame.walEnd, msg: decodePgoutput(frame.data), size: chunk.length };
        this.received = maxLsn(this.received, frame.dataStart);
      } else {
        item = { kind: 'keepalive', walEnd: frame.walEnd, replyRequested: frame.replyRequested };
        // Reported as "written" only (informational for logical slots); without it the walsender
        // sends a keepalive every time it waits for WAL while we are busy.
        this.received = maxLsn(this.received, frame.walEnd);
        // Answer at once with what is confirmed so far: the walsender ends connections that stay
        // silent for wal_sender_timeout, and the queue in front of this keepalive may be long.
        if (frame.replyRequested) this.sendStatus(false);
      }
    } catch (err) {
      this.finish(new CdcError(`undecodable replication message: ${(err as Error).message}`, { retriable: false, code: 'PG_DECODE', cause: err }));
      return;
    }
    this.push(item);
  }

  private push(item: StreamItem): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w(item);
      return;
    }
    this.queue.push(item);
    this.queuedBytes += item.kind === 'xlog' ? item.size : 32;
    if (!this.paused && this.queuedBytes > this.highWater) {
      this.paused = true;
      this.conn.stream.pause();
    }
  }

  private finish(error: CdcError | null): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.timer);
    this.push({ kind: 'end', error });
  }

  /** The next item in wire order; `end` once the stream is over (then always `end`). */
  next(): Promise<StreamItem> {
    if (this.head < this.queue.length) {
      const item = this.queue[this.head]!;
      this.queue[this.head++] = undefined as unknown as StreamItem;
      if (this.head > 4096 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      this.queuedBytes -= item.kind === 'xlog' ? item.size : 32;
      if (this.paused && this.queuedBytes < this.highWater / 2) {
        this.paused = false;
        this.conn.stream.resume();
      }
      if (item.kind === 'end') this.queue.push(item); // stay ended
      return Promise.resolve(item);
    }
    if (this.ended) return Promise.resolve({ kind: 'end', error: null });
    if (this.woken) {
      this.woken = false;
      return Promise.resolve({ kind: 'wake' });
    }
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  /**
   * Makes a pending (or the next idle) `next()` return `wake`. Lets the consumer wait for data,
   * a finished publish and a stop request with one promise: racing long-lived promises in a loop
   * would pile up reactions on them (a leak per message).
   */
  interrupt(): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w({ kind: 'wake' });
    } else this.woken = true;
  }

  /** Number of items waiting (tells the caller whether more data is already here). */
  get pending(): number {
    return this.queue.length - this.head;
  }

  /**
   * Marks `lsn` as durably handled (Kafka acknowledged everything up to it). Never goes back.
   * `flushNow` sends the status update immediately instead of at the next tick.
   */
  confirm(lsn: Lsn, flushNow = false): void {
    if (lsn > this.confirmed) this.confirmed = lsn;
    if (flushNow) this.sendStatus(false);
  }

  get confirmedLsn(): Lsn {
    return this.confirmed;
  }

  private sendStatus(replyRequested: boolean): void {
    if (this.ended || this.confirmed === 0n) return;
    // Unchanged status is still sent on the timer: it is the walsender's liveness signal.
    try {
      this.conn.sendCopyFromChunk(encodeStatusUpdate(maxLsn(this.received, this.confirmed), this.confirmed, BigInt(Date.now()) * 1000n, replyRequested));
      this.lastSent = this.confirmed;
    } catch {
      // The socket is gone; the query promise reports why.
    }
  }

  /** Sends a final status update and ends the stream (the connection is closed by its owner). */
  stop(): void {
    if (this.lastSent !== this.confirmed) this.sendStatus(false);
    this.finish(null);
    this.conn.removeAllListeners('copyData');
    if (this.paused) this.conn.stream.resume();
  }
}
