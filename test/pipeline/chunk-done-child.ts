// Child process of run-store.int.test.ts: records one finished chunk through the Redis URL it is
// given (the test's proxy), then exits. The test kills it with -9 once its first write that names
// the run's keys reaches Redis.
import { RunStore } from '../../pipeline/jobs/progress.js';
import { redisConnection } from '../../pipeline/jobs/queues.js';

const [url, pipeline, runId, table, chunk, rows] = process.argv.slice(2) as [string, string, string, string, string, string];
const redis = redisConnection(url);
await new RunStore(redis, pipeline).chunkDone(runId, table, chunk, Number(rows));
process.stdout.write('recorded\n');
redis.disconnect();
