import type { TransactionEvent } from '../schemas/change-event.js';
import type { SinkChange } from '../sinks/sink.js';

/**
 * Transaction mode's ordering engine, pure: merges one source's table partitions and its
 * transaction topic back into source commit order.
 *
 * Every partition is in commit order and the transaction topic lists BEGIN/END in commit order,
 * so the next transaction's events are always at the heads of the partition buffers. They are
 * handed out in `total_order` (a key change's delete and a re-insert of that key land in two
 * partitions; their order inside the transaction matters). A transaction can be handed out in
 * several steps before its END arrives (bounded memory); the caller keeps one replica transaction
 * open until the step that completes it.
 *
 * Events without transaction metadata (snapshot reads, non-transactional tables) are handed out
 * alone as soon as they reach a partition head.
 */

export interface BufferedChange {
  /** null: a record with nothing to apply (a delete tombstone, a dead-lettered record); only its offset counts. */
  change: SinkChange | null;
  offset: bigint;
}

export type Step =
  | { kind: 'standalone'; changes: SinkChange[] }
  /** `complete`: the transaction's END arrived and every one of its events has been handed out. */
  | { kind: 'transaction'; id: string; changes: SinkChange[]; complete: boolean };

interface OpenTx {
  id: string;
  beginOffset: bigint;
  end: TransactionEvent | null;
  endOffset: bigint | null;
  /** Next total_order to hand out (1-based). */
  nextOrder: number;
  handedOut: number;
}

/** A FIFO with O(1) removal at the head (Array#shift is O(n) on large arrays). */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  peek(): T | undefined {
    return this.items[this.head];
  }
  push(v: T): void {
    this.items.push(v);
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const v = this.items[this.head++];
    if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return v;
  }
}

/** A bounded set of recently applied transaction ids (drops duplicates a source restart republished). */
class RecentIds {
  private readonly set = new Set<string>();
  private readonly order = new Fifo<string>();
  constructor(private readonly cap = 50_000) {}
  add(id: string): void {
    if (this.set.has(id)) return;
    this.set.add(id);
    this.order.push(id);
    if (this.order.length > this.cap) this.set.delete(this.order.shift()!);
  }
  has(id: string): boolean {
    return this.set.has(id);
  }
}

export class TransactionMerger {
  /** Data partition buffers, keyed by partitionKey(topic, partition). */
  private readonly buffers = new Map<string, Fifo<BufferedChange>>();
  private readonly queue = new Fifo<OpenTx>();
  private readonly byId = new Map<string, OpenTx>();
  private readonly applied = new RecentIds();
  /** Next offset per data partition covering every record handed out or dropped. */
  private readonly consumed = new Map<string, bigint>();
  /** Offset after the last transaction-topic record seen. */
  private txSeen: bigint | null = null;

  constructor(readonly txPartition: string) {}

  /** Records of the transaction topic, in order. */
  pushTransaction(e: TransactionEvent, offset: bigint): void {
    this.txSeen = offset + 1n;
    const id = String(e.id);
    if (e.status === 'BEGIN') {
      // A BEGIN seen before (a source restart republished it) adds nothing.
      if (this.applied.has(id) || this.byId.has(id)) return;
      const tx: OpenTx = { id, beginOffset: offset, end: null, endOffset: null, nextOrder: 1, handedOut: 0 };
      this.queue.push(tx);
      this.byId.set(id, tx);
      return;
    }
    const tx = this.byId.get(id);
    if (tx && tx.end === null) {
      tx.end = e;
      tx.endOffset = offset;
    }
  }

  pushChanges(partition: string, items: BufferedChange[]): void {
    let buf = this.buffers.get(partition);
    if (!buf) this.buffers.set(partition, (buf = new Fifo()));
    for (const it of items) buf.push(it);
  }

  /** Buffered events of a partition (the caller pauses full partitions). */
  buffered(partition: string): number {
    return this.buffers.get(partition)?.length ?? 0;
  }

  /** Transactions waiting in the queue (the caller pauses the transaction topic when it grows). */
  queuedTransactions(): number {
    return this.queue.length;
  }

  /**
   * Next offset to store per partition: data partitions after their last handed-out record; the
   * transaction topic at the BEGIN of the oldest transaction not yet complete (a restart must
   * read it again), else after its last record.
   */
  offsets(): Map<string, bigint> {
    const out = new Map(this.consumed);
    const head = this.queue.peek();
    const tx = head ? head.beginOffset : this.txSeen;
    if (tx !== null) out.set(this.txPartition, tx);
    return out;
  }

  private take(partition: string): BufferedChange {
    const item = this.buffers.get(partition)!.shift()!;
    const next = item.offset + 1n;
    const cur = this.consumed.get(partition);
    if (cur === undefined || next > cur) this.consumed.set(partition, next);
    return item;
  }

  /**
   * Drops head events that were applied already: events of applied transactions, and copies of
   * events of the current transaction handed out before (a source restart republishes a whole
   * transaction, after a part of it may have reached Kafka).
   */
  private dropDuplicates(): void {
    const cur = this.queue.peek();
    for (const [p, buf] of this.buffers) {
      while (buf.length > 0) {
        const head = buf.peek()!.change;
        if (head === null) {
          this.take(p);
          continue;
        }
        const t = head.event.transaction;
        if (t === null) break;
        const id = String(t.id);
        const dup = (!this.byId.has(id) && this.applied.has(id)) || (cur !== undefined && id === cur.id && t.total_order < cur.nextOrder);
        if (!dup) break;
        this.take(p);
      }
    }
  }

  /**
   * The next thing that can be applied, at most `max` events, or null when waiting for records.
   * Handed-out events leave the buffers: when the replica transaction fails, the caller restarts
   * from the offsets the replica stored.
   */
  next(max: number): Step | null {
    this.dropDuplicates();
    const alone: SinkChange[] = [];
    for (const [p, buf] of this.buffers) {
      while (buf.length > 0 && alone.length < max) {
        const head = buf.peek()!.change;
        if (head !== null && head.event.transaction !== null) break;
        this.take(p);
        if (head !== null) alone.push(head);
      }
    }
    if (alone.length > 0) return { kind: 'standalone', changes: alone };

    const tx = this.queue.peek();
    if (!tx) return null;
    const out: SinkChange[] = [];
    while (out.length < max) {
      let found: string | undefined;
      for (const [p, buf] of this.buffers) {
        const h = buf.peek()?.change?.event.transaction;
        if (h && String(h.id) === tx.id && h.total_order === tx.nextOrder) {
          found = p;
          break;
        }
      }
      if (found === undefined) break;
      out.push(this.take(found).change!);
      tx.nextOrder++;
      this.dropDuplicates();
    }
    tx.handedOut += out.length;
    const complete = tx.end !== null && tx.nextOrder > (tx.end.event_count ?? 0);
    if (complete) {
      this.queue.shift();
      this.byId.delete(tx.id);
      this.applied.add(tx.id);
    }
    if (out.length === 0 && !complete) return null;
    return { kind: 'transaction', id: tx.id, changes: out, complete };
  }

  /** The transaction being assembled and what it waits for (for logs when it stalls). */
  waitingFor(): { id: string; nextOrder: number; eventCount: number | null } | null {
    const tx = this.queue.peek();
    return tx ? { id: tx.id, nextOrder: tx.nextOrder, eventCount: tx.end?.event_count ?? null } : null;
  }

  /** The head of every data buffer (transaction id, total_order) and its size, for stall logs. */
  heads(): Record<string, { size: number; tx: string | null; order: number | null }> {
    const out: Record<string, { size: number; tx: string | null; order: number | null }> = {};
    for (const [p, buf] of this.buffers) {
      const t = buf.peek()?.change?.event.transaction ?? null;
      out[p] = { size: buf.length, tx: t ? String(t.id) : null, order: t ? t.total_order : null };
    }
    return out;
  }

  /** True while a transaction has been partly handed out. */
  get midTransaction(): boolean {
    const tx = this.queue.peek();
    return tx !== undefined && tx.handedOut > 0;
  }
}
