import type { Lsn } from './lsn.js';

/**
 * Decoder of the replication wire: the CopyData frames of a logical replication stream
 * (XLogData 'w', primary keepalive 'k') and the pgoutput messages inside XLogData, protocol
 * version 1 (https://www.postgresql.org/docs/15/protocol-logicalrep-message-formats.html).
 * Pure functions over Buffers, so captured wire bytes serve as test fixtures. Values stay as the
 * text the walsender printed; per-type decoding happens in `values.ts`.
 */

/** Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01). */
export const PG_EPOCH_OFFSET_US = 946_684_800_000_000n;

/** A column an update did not change whose value is TOASTed, so pgoutput did not send it. */
export const TOAST_UNCHANGED: unique symbol = Symbol('toast-unchanged');

/** One column of a tuple: null, the unchanged-TOAST marker, or the text the output function printed. */
export type TupleValue = null | typeof TOAST_UNCHANGED | string;

export interface RelationColumn {
  /** Bit 1: part of the replica identity key. */
  flags: number;
  name: string;
  typeOid: number;
  typmod: number;
}

/** d = default (primary key), n = nothing, f = full, i = index. */
export type ReplicaIdentity = 'd' | 'n' | 'f' | 'i';

export type PgoutputMessage =
  | { tag: 'begin'; finalLsn: Lsn; commitTimeUs: bigint; xid: number }
  | { tag: 'commit'; flags: number; commitLsn: Lsn; endLsn: Lsn; commitTimeUs: bigint }
  | { tag: 'origin'; originLsn: Lsn; name: string }
  | { tag: 'relation'; relationId: number; namespace: string; name: string; replicaIdentity: ReplicaIdentity; columns: RelationColumn[] }
  | { tag: 'type'; typeOid: number; namespace: string; name: string }
  | { tag: 'insert'; relationId: number; newTuple: TupleValue[]; bytes: number }
  | { tag: 'update'; relationId: number; oldKind: 'K' | 'O' | null; oldTuple: TupleValue[] | null; newTuple: TupleValue[]; bytes: number }
  | { tag: 'delete'; relationId: number; oldKind: 'K' | 'O'; oldTuple: TupleValue[]; bytes: number }
  | { tag: 'truncate'; relationIds: number[]; cascade: boolean; restartIdentity: boolean }
  | { tag: 'message'; transactional: boolean; lsn: Lsn; prefix: string; content: Buffer };

/** One CopyData frame of the replication stream. */
export type ReplicationFrame =
  | { kind: 'xlog'; dataStart: Lsn; walEnd: Lsn; sendTimeUs: bigint; data: Buffer }
  | { kind: 'keepalive'; walEnd: Lsn; sendTimeUs: bigint; replyRequested: boolean };

export class DecodeError extends Error {
  override name = 'DecodeError';
}

export function decodeFrame(buf: Buffer): ReplicationFrame {
  const tag = buf[0];
  if (tag === 0x77 /* w */) {
    if (buf.length < 25) throw new DecodeError(`XLogData frame too short (${buf.length} bytes)`);
    return {
      kind: 'xlog',
      dataStart: buf.readBigUInt64BE(1),
      walEnd: buf.readBigUInt64BE(9),
      sendTimeUs: buf.readBigInt64BE(17) + PG_EPOCH_OFFSET_US,
      data: buf.subarray(25),
    };
  }
  if (tag === 0x6b /* k */) {
    if (buf.length < 18) throw new DecodeError(`keepalive frame too short (${buf.length} bytes)`);
    return { kind: 'keepalive', walEnd: buf.readBigUInt64BE(1), sendTimeUs: buf.readBigInt64BE(9) + PG_EPOCH_OFFSET_US, replyRequested: buf[17] === 1 };
  }
  throw new DecodeError(`unknown replication frame type 0x${(tag ?? 0).toString(16)}`);
}

/**
 * Standby status update ('r'). `flushed` is what the slot may confirm: the walsender sets the
 * slot's confirmed_flush_lsn from it, so it must never exceed what Kafka has acknowledged.
 */
export function encodeStatusUpdate(written: Lsn, flushed: Lsn, nowUs: bigint, replyRequested = false): Buffer {
  const b = Buffer.alloc(34);
  b[0] = 0x72; // r
  b.writeBigUInt64BE(written, 1);
  b.writeBigUInt64BE(flushed, 9);
  b.writeBigUInt64BE(flushed, 17);
  b.writeBigInt64BE(nowUs - PG_EPOCH_OFFSET_US, 25);
  b[33] = replyRequested ? 1 : 0;
  return b;
}

/** Cursor over one message; every read checks bounds so a truncated message fails loudly. */
class Reader {
  pos = 0;
  constructor(private readonly b: Buffer) {}
  need(n: number): void {
    if (this.pos + n > this.b.length) throw new DecodeError(`pgoutput message truncated at byte ${this.pos} (need ${n}, have ${this.b.length - this.pos})`);
  }
  u8(): number {
    this.need(1);
    return this.b[this.pos++]!;
  }
  i16(): number {
    this.need(2);
    const v = this.b.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  i32(): number {
    this.need(4);
    const v = this.b.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.b.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): bigint {
    this.need(8);
    const v = this.b.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  i64(): bigint {
    this.need(8);
    const v = this.b.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  cstring(): string {
    const end = this.b.indexOf(0, this.pos);
    if (end < 0) throw new DecodeError(`unterminated string at byte ${this.pos}`);
    const s = this.b.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return s;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const v = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  text(n: number): string {
    this.need(n);
    const v = this.b.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  get length(): number {
    return this.b.length;
  }
}

function tuple(r: Reader): TupleValue[] {
  const n = r.i16();
  const values: TupleValue[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const kind = r.u8();
    switch (kind) {
      case 0x6e: // n
        values[i] = null;
        break;
      case 0x75: // u
        values[i] = TOAST_UNCHANGED;
        break;
      case 0x74: // t
        values[i] = r.text(r.i32());
        break;
      case 0x62: // b: only sent when the binary option is on, which this connector never asks for
        throw new DecodeError('binary tuple value received, but the stream was started in text mode');
      default:
        throw new DecodeError(`unknown tuple value kind 0x${kind.toString(16)} in column ${i}`);
    }
  }
  return values;
}

function tupleKind(r: Reader, allowed: string): string {
  const k = String.fromCharCode(r.u8());
  if (!allowed.includes(k)) throw new DecodeError(`unexpected tuple marker '${k}' (expected one of ${allowed})`);
  return k;
}

/** Decodes one pgoutput message (the payload of an XLogData frame). */
export function decodePgoutput(buf: Buffer): PgoutputMessage {
  const r = new Reader(buf);
  const tag = String.fromCharCode(r.u8());
  switch (tag) {
    case 'B':
      return { tag: 'begin', finalLsn: r.u64(), commitTimeUs: r.i64() + PG_EPOCH_OFFSET_US, xid: r.u32() };
    case 'C':
      return { tag: 'commit', flags: r.u8(), commitLsn: r.u64(), endLsn: r.u64(), commitTimeUs: r.i64() + PG_EPOCH_OFFSET_US };
    case 'O':
      return { tag: 'origin', originLsn: r.u64(), name: r.cstring() };
    case 'R': {
      const relationId = r.u32();
      const namespace = r.cstring();
      const name = r.cstring();
      const ri = String.fromCharCode(r.u8());
      if (!'dnfi'.includes(ri)) throw new DecodeError(`unknown replica identity '${ri}' for ${namespace}.${name}`);
      const n = r.i16();
      const columns: RelationColumn[] = [];
      for (let i = 0; i < n; i++) columns.push({ flags: r.u8(), name: r.cstring(), typeOid: r.u32(), typmod: r.i32() });
      return { tag: 'relation', relationId, namespace, name, replicaIdentity: ri as ReplicaIdentity, columns };
    }
    case 'Y':
      return { tag: 'type', typeOid: r.u32(), namespace: r.cstring(), name: r.cstring() };
    case 'I': {
      const relationId = r.u32();
      tupleKind(r, 'N');
      return { tag: 'insert', relationId, newTuple: tuple(r), bytes: r.length };
    }
    case 'U': {
      const relationId = r.u32();
      const k = tupleKind(r, 'KON');
      if (k === 'N') return { tag: 'update', relationId, oldKind: null, oldTuple: null, newTuple: tuple(r), bytes: r.length };
      const oldTuple = tuple(r);
      tupleKind(r, 'N');
      return { tag: 'update', relationId, oldKind: k as 'K' | 'O', oldTuple, newTuple: tuple(r), bytes: r.length };
    }
    case 'D': {
      const relationId = r.u32();
      const k = tupleKind(r, 'KO') as 'K' | 'O';
      return { tag: 'delete', relationId, oldKind: k, oldTuple: tuple(r), bytes: r.length };
    }
    case 'T': {
      const n = r.i32();
      const options = r.u8();
      const relationIds: number[] = [];
      for (let i = 0; i < n; i++) relationIds.push(r.u32());
      return { tag: 'truncate', relationIds, cascade: (options & 1) !== 0, restartIdentity: (options & 2) !== 0 };
    }
    case 'M': {
      const flags = r.u8();
      const lsn = r.u64();
      const prefix = r.cstring();
      const len = r.i32();
      return { tag: 'message', transactional: (flags & 1) !== 0, lsn, prefix, content: Buffer.from(r.bytes(len)) };
    }
    default:
      throw new DecodeError(`unknown pgoutput message '${tag}' (0x${(buf[0] ?? 0).toString(16)}); proto_version 1 has B C O R Y I U D T M`);
  }
}
