import { CdcError } from '../../schemas/errors.js';

/**
 * A cursor over a binlog event body. Every read checks bounds, so a truncated or corrupt event
 * fails with an error naming what was being read instead of decoding garbage.
 */
export class Reader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number, what: string): void {
    if (n < 0 || this.pos + n > this.end) {
      throw new CdcError(`binlog event truncated: ${what} needs ${n} bytes at offset ${this.pos}, ${this.end - this.pos} left`, { code: 'BINLOG_DECODE' });
    }
  }

  u8(what = 'u8'): number {
    this.need(1, what);
    return this.buf[this.pos++]!;
  }
  u16(what = 'u16'): number {
    this.need(2, what);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }
  u24(what = 'u24'): number {
    this.need(3, what);
    const v = this.buf.readUIntLE(this.pos, 3);
    this.pos += 3;
    return v;
  }
  u32(what = 'u32'): number {
    this.need(4, what);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  u48(what = 'u48'): number {
    this.need(6, what);
    const v = this.buf.readUIntLE(this.pos, 6);
    this.pos += 6;
    return v;
  }
  u64(what = 'u64'): bigint {
    this.need(8, what);
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    return v;
  }
  /** Unsigned little-endian integer of `n` (1..6) bytes. */
  uintLE(n: number, what = 'uint'): number {
    this.need(n, what);
    const v = this.buf.readUIntLE(this.pos, n);
    this.pos += n;
    return v;
  }
  /** Length-encoded integer (MySQL protocol "lenenc"); values beyond 2^53 are refused. */
  lenenc(what = 'length-encoded integer'): number {
    const first = this.u8(what);
    if (first < 0xfb) return first;
    if (first === 0xfc) return this.u16(what);
    if (first === 0xfd) return this.u24(what);
    if (first === 0xfe) {
      const v = this.u64(what);
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CdcError(`binlog event: ${what} too large (${v})`, { code: 'BINLOG_DECODE' });
      return Number(v);
    }
    throw new CdcError(`binlog event: invalid length-encoded integer prefix 0x${first.toString(16)} for ${what}`, { code: 'BINLOG_DECODE' });
  }
  bytes(n: number, what = 'bytes'): Buffer {
    this.need(n, what);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  skip(n: number, what = 'skip'): void {
    this.need(n, what);
    this.pos += n;
  }
  /** The rest of the body. */
  rest(): Buffer {
    const b = this.buf.subarray(this.pos, this.end);
    this.pos = this.end;
    return b;
  }
  utf8(n: number, what = 'string'): string {
    return this.bytes(n, what).toString('utf8');
  }
  /** A string prefixed with its length as a lenenc integer. */
  lenencString(what = 'string'): Buffer {
    return this.bytes(this.lenenc(what), what);
  }
}
