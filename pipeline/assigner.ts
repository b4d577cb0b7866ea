import { AssignerProtocol, type Admin, type PartitionAssigner } from 'kafkajs';
import type { Logger } from '../util/log.js';

/**
 * A partition assigner that balances records, not partition counts. Change topics are skewed: a
 * table with one hot row (pgbench's branches), a keyless table (every record on one partition)
 * or one big table next to small ones leave some partitions with most of the records, and
 * Kafka's round robin can hand two of those to one worker while the other idles. Here each
 * partition weighs what it holds (high - low watermark: its share of the traffic over the
 * retention) plus what the group has not consumed yet (high - committed: the backlog), and the
 * heaviest partitions go first, each to the least loaded worker (longest processing time first).
 *
 * Kafka Connect and kafkajs assign by count; PeerDB does not split a table's stream at all.
 * Members that do not know this assigner fall back to round robin (both are offered).
 */

export interface PartitionWeight {
  topic: string;
  partition: number;
  weight: number;
}

/** Members' partitions, heaviest first to the least loaded member. Pure and deterministic. */
export function balance(members: string[], parts: PartitionWeight[]): Map<string, Record<string, number[]>> {
  const ids = [...members].sort();
  const load = new Map(ids.map((m) => [m, { weight: 0, count: 0 }]));
  const out = new Map<string, Record<string, number[]>>(ids.map((m) => [m, {}]));
  const sorted = [...parts].sort((a, b) => b.weight - a.weight || (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
  for (const p of sorted) {
    let best = ids[0]!;
    for (const m of ids) {
      const l = load.get(m)!;
      const b = load.get(best)!;
      if (l.weight < b.weight || (l.weight === b.weight && l.count < b.count)) best = m;
    }
    const l = load.get(best)!;
    l.weight += p.weight;
    l.count++;
    const a = out.get(best)!;
    (a[p.topic] ??= []).push(p.partition);
  }
  return out;
}

/**
 * The assigner for a sink's group. `admin` reads watermarks and the group's committed offsets
 * (the sink commits them for lag tools); if it cannot, every partition weighs the same.
 */
export function recordBalancedAssigner(admin: Admin, groupId: string, log: Logger): PartitionAssigner {
  return ({ cluster }) => ({
    name: 'CdcRecordBalancedAssigner',
    version: 0,
    async assign({ members, topics }) {
      const parts: PartitionWeight[] = [];
      for (const topic of topics) {
        const meta = cluster.findTopicPartitionMetadata(topic);
        let weights = new Map<number, number>();
        try {
          const [marks, committed] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId, topics: [topic] })]);
          const done = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
          for (const m of marks) {
            const high = Number(m.high);
            const low = Number(m.low);
            const at = done.get(m.partition);
            const from = at === undefined || at < low ? low : at;
            weights.set(m.partition, Math.max(0, high - low) + Math.max(0, high - from));
          }
        } catch (err) {
          log.warn({ topic, err: (err as Error).message }, 'cannot read partition sizes; assigning by count');
          weights = new Map();
        }
        for (const m of meta) parts.push({ topic, partition: m.partitionId, weight: weights.get(m.partitionId) ?? 0 });
      }
      const plan = balance(
        members.map((m) => m.memberId),
        parts,
      );
      return [...plan].map(([memberId, assignment]) => ({
        memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 0, assignment, userData: Buffer.alloc(0) }),
      }));
    },
    protocol({ topics }) {
      return { name: 'CdcRecordBalancedAssigner', metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }) };
    },
  });
}
