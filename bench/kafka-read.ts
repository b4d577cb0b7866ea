/**
 * The ceiling of any kafkajs-based sink: a consumer that only reads a backlog, with the sink's
 * fetch settings and a fresh group, and does nothing else (or only JSON.parse of each value with
 * `--parse`). bench/sink.ts runs it in the same run as the native subscription and the sink.
 *
 *   npx tsx bench/kafka-read.ts --brokers 127.0.0.1:19092 --topics a,b --records 100000 [--parse]
 *
 * Stops at `--records` records or when every partition is read to its end (a transactional
 * topic's high watermark counts commit markers). Prints one JSON line: records read, seconds from
 * the first record to the last, CPU seconds of this process over that time.
 */
import { randomUUID } from 'node:crypto';
import { KEY_MODE_FETCH } from '../pipeline/consumer.js';
import { createKafka } from '../pipeline/kafka.js';
import { arg } from './args.js';

const brokers = arg('brokers', '127.0.0.1:19092').split(',');
const topics = arg('topics', '').split(',').filter(Boolean);
const expected = Number(arg('records', '0'));
const parse = process.argv.includes('--parse');
if (topics.length === 0 || !(expected > 0)) throw new Error('--topics and --records are required');

const kafka = createKafka({ brokers, clientId: 'bench-read' });
// The same fetch settings as the sink's key-mode consumer.
const consumer = kafka.consumer({ groupId: `bench-read-${randomUUID()}`, ...KEY_MODE_FETCH });
let n = 0;
let bytes = 0;
let first = 0;
let cpu0 = process.cpuUsage();
let done: () => void = () => undefined;
const finished = new Promise<void>((r) => (done = r));
const admin = kafka.admin();
await admin.connect();
/** Partitions holding records: the run ends when each is read to its end. */
let partitions = 0;
for (const t of topics) partitions += (await admin.fetchTopicOffsets(t)).filter((o) => BigInt(o.high) > BigInt(o.low)).length;
await admin.disconnect();
const finishedPartitions = new Set<string>();
await consumer.connect();
await consumer.subscribe({ topics, fromBeginning: true });
await consumer.run({
  autoCommit: false,
  partitionsConsumedConcurrently: 3,
  eachBatch: async ({ batch }) => {
    if (first === 0) {
      first = performance.now();
      cpu0 = process.cpuUsage();
    }
    for (const m of batch.messages) {
      if (m.value) {
        bytes += m.value.length;
        if (parse) JSON.parse(m.value.toString('utf8'));
      }
      n++;
    }
    // Done at `expected` records, or when every partition is read to its end (high watermarks
    // count transaction markers, which are not records).
    if (BigInt(batch.lastOffset()) + 1n >= BigInt(batch.highWatermark)) finishedPartitions.add(`${batch.topic}/${batch.partition}`);
    if (n >= expected || finishedPartitions.size >= partitions) done();
  },
});
await finished;
const seconds = (performance.now() - first) / 1000;
const c = process.cpuUsage(cpu0);
console.log(JSON.stringify({ records: n, bytes, seconds, cpuSeconds: (c.user + c.system) / 1e6, parse }));
await consumer.disconnect();
process.exit(0);
