import { CdcError } from '../../schemas/errors.js';
import { Reader } from './reader.js';

/**
 * GTID positions of both dialects.
 *
 * MariaDB: a GTID is `domain-server-seq`; a position is one GTID per replication domain (the
 * last transaction applied in that domain), e.g. `0-1-100,1-1-8`. That is what
 * `@slave_connect_state` takes and `@@gtid_binlog_pos` prints.
 *
 * MySQL: a GTID is `uuid:n`; a position is the set of every executed transaction,
 * `uuid:1-100:102,uuid2:1-7` (`@@gtid_executed`), sent binary-encoded in COM_BINLOG_DUMP_GTID.
 */

const ERR = (msg: string) => new CdcError(msg, { code: 'GTID', retriable: false });

// ---------------------------------------------------------------------------------------------
// MariaDB

export interface MariaGtid {
  domain: number;
  server: number;
  seq: bigint;
}

export function formatMariaGtid(g: MariaGtid): string {
  return `${g.domain}-${g.server}-${g.seq}`;
}

export function parseMariaGtid(text: string): MariaGtid {
  const m = /^\s*(\d+)-(\d+)-(\d+)\s*$/.exec(text);
  if (!m) throw ERR(`not a MariaDB GTID: "${text}" (expected domain-server-seq)`);
  return { domain: Number(m[1]), server: Number(m[2]), seq: BigInt(m[3]!) };
}

/** A MariaDB GTID position: the last GTID per domain. */
export class MariaGtidList {
  private readonly byDomain = new Map<number, MariaGtid>();

  static parse(text: string): MariaGtidList {
    const list = new MariaGtidList();
    for (const part of text.split(',')) {
      if (part.trim() === '') continue;
      list.update(parseMariaGtid(part));
    }
    return list;
  }

  /** Records that `g` is the latest transaction of its domain. */
  update(g: MariaGtid): void {
    this.byDomain.set(g.domain, { ...g });
  }

  /** Is the transaction `g` at or before this position (so already covered)? */
  contains(g: MariaGtid): boolean {
    const cur = this.byDomain.get(g.domain);
    return cur !== undefined && cur.seq >= g.seq;
  }

  get size(): number {
    return this.byDomain.size;
  }

  clone(): MariaGtidList {
    const c = new MariaGtidList();
    for (const g of this.byDomain.values()) c.update(g);
    return c;
  }

  toString(): string {
    return [...this.byDomain.values()]
      .sort((a, b) => a.domain - b.domain)
      .map(formatMariaGtid)
      .join(',');
  }
}

// ---------------------------------------------------------------------------------------------
// MySQL

const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** Canonical lower-case dashed form. */
export function normalizeUuid(u: string): string {
  if (!UUID_RE.test(u)) throw ERR(`not a server UUID: "${u}"`);
  const h = u.replace(/-/g, '').toLowerCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function uuidFromBytes(b: Buffer): string {
  return normalizeUuid(b.toString('hex'));
}

/** Inclusive interval [start, end] of transaction numbers. */
export type Interval = [bigint, bigint];

/** A MySQL GTID set: server UUID -> sorted, disjoint, non-adjacent inclusive intervals. */
export class MysqlGtidSet {
  private readonly sets = new Map<string, Interval[]>();

  static parse(text: string): MysqlGtidSet {
    const set = new MysqlGtidSet();
    const cleaned = text.replace(/\s+/g, '');
    if (cleaned === '') return set;
    for (const part of cleaned.split(',')) {
      const fields = part.split(':');
      const uuid = normalizeUuid(fields[0] ?? '');
      if (fields.length < 2) throw ERR(`GTID set entry without intervals: "${part}"`);
      for (const range of fields.slice(1)) {
        if (!/^\d+(-\d+)?$/.test(range)) {
          // MySQL 8.3+ tagged GTIDs (uuid:tag:1-5) use a different binary encoding.
          throw ERR(`unsupported GTID set entry "${part}": tagged GTIDs (MySQL 8.3+) are not supported`);
        }
        const [a, b] = range.split('-');
        const start = BigInt(a!);
        const end = b === undefined ? start : BigInt(b);
        if (start < 1n || end < start) throw ERR(`invalid GTID interval "${range}" in "${part}"`);
        set.addInterval(uuid, start, end);
      }
    }
    return set;
  }

  /** Decodes the binary form (PREVIOUS_GTIDS event body, COM_BINLOG_DUMP_GTID data). */
  static decode(buf: Buffer): MysqlGtidSet {
    const r = new Reader(buf);
    const set = new MysqlGtidSet();
    const nSids = r.u64('GTID set sid count');
    for (let i = 0n; i < nSids; i++) {
      const uuid = uuidFromBytes(r.bytes(16, 'GTID set sid'));
      const n = r.u64('GTID set interval count');
      for (let j = 0n; j < n; j++) {
        const start = r.u64('GTID interval start');
        const endExclusive = r.u64('GTID interval end');
        set.addInterval(uuid, start, endExclusive - 1n);
      }
    }
    return set;
  }

  add(uuid: string, gno: bigint): void {
    this.addInterval(normalizeUuid(uuid), gno, gno);
  }

  addInterval(uuid: string, start: bigint, end: bigint): void {
    const list = this.sets.get(uuid) ?? [];
    list.push([start, end]);
    list.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    const merged: Interval[] = [];
    for (const iv of list) {
      const last = merged[merged.length - 1];
      if (last && iv[0] <= last[1] + 1n) {
        if (iv[1] > last[1]) last[1] = iv[1];
      } else merged.push([iv[0], iv[1]]);
    }
    this.sets.set(uuid, merged);
  }

  contains(uuid: string, gno: bigint): boolean {
    const list = this.sets.get(normalizeUuid(uuid));
    return list !== undefined && list.some(([a, b]) => gno >= a && gno <= b);
  }

  get isEmpty(): boolean {
    return this.sets.size === 0;
  }

  clone(): MysqlGtidSet {
    return MysqlGtidSet.parse(this.toString());
  }

  toString(): string {
    return [...this.sets.keys()]
      .sort()
      .map((uuid) => `${uuid}:${this.sets.get(uuid)!.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(':')}`)
      .join(',');
  }

  /** Binary form: n_sids u64, then per sid: uuid(16), n_intervals u64, [start u64, end-exclusive u64]... */
  encode(): Buffer {
    const uuids = [...this.sets.keys()].sort();
    let size = 8;
    for (const u of uuids) size += 16 + 8 + 16 * this.sets.get(u)!.length;
    const out = Buffer.alloc(size);
    let o = out.writeBigUInt64LE(BigInt(uuids.length), 0);
    for (const u of uuids) {
      o += Buffer.from(u.replace(/-/g, ''), 'hex').copy(out, o);
      const list = this.sets.get(u)!;
      o = out.writeBigUInt64LE(BigInt(list.length), o);
      for (const [a, b] of list) {
        o = out.writeBigUInt64LE(a, o);
        o = out.writeBigUInt64LE(b + 1n, o);
      }
    }
    return out;
  }
}
