import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { checkRedis } from '../../pipeline/jobs/queues.js';
import { createKafka } from '../../pipeline/kafka.js';
import { startSnapshotWorker } from '../../pipeline/snapshot/engine.js';
import { createLogger, setLogger } from '../../util/log.js';
import { EXIT } from '../exit.js';

export function registerSnapshot(program: Command): void {
  const snap = program.command('snapshot').description('snapshots and backfills (bullmq jobs on redis.url)');
  snap
    .command('worker')
    .description('run snapshot chunk jobs until SIGINT/SIGTERM (add processes to go faster)')
    .requiredOption('-c, --config <file>', 'pipeline config (YAML)')
    .option('--concurrency <n>', 'chunk jobs at once (default: snapshot.concurrency)')
    .action(async (opts: { config: string; concurrency?: string }) => {
      const cfg = await loadConfig(opts.config);
      setLogger(createLogger(cfg.log.level));
      await checkRedis(cfg.redis.url);
      let kafka: ReturnType<typeof createKafka> | undefined;
      const w = startSnapshotWorker(cfg, () => (kafka ??= createKafka(cfg.kafka)), opts.concurrency ? Number(opts.concurrency) : cfg.snapshot.concurrency);
      process.stderr.write(`snapshot worker ${process.pid} ready\n`);
      await new Promise<void>((resolve) => {
        for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve());
      });
      await w.close();
      process.exitCode = EXIT.ok;
    });
}
