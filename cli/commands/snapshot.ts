import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { urlKind } from '../../config/schema.js';
import { showProgress } from '../../pipeline/jobs/progress-bar.js';
import { RunStore } from '../../pipeline/jobs/progress.js';
import { checkRedis, redisConnection } from '../../pipeline/jobs/queues.js';
import { findSource, openReader, parseTableArg } from '../../pipeline/jobs/readers.js';
import { createKafka } from '../../pipeline/kafka.js';
import { startSnapshotWorker } from '../../pipeline/snapshot/engine.js';
import { runIncrementalSnapshot, startIncrementalWorker } from '../../pipeline/snapshot/incremental.js';
import { ConfigError } from '../../schemas/errors.js';
import { createLogger, setLogger } from '../../util/log.js';
import { EXIT } from '../exit.js';

export function registerSnapshot(program: Command): void {
  const snap = program
    .command('snapshot')
    .description('re-snapshot tables while the pipeline streams (watermark windows; needs the source signal table), or run snapshot workers')
    .argument('[tables...]', 'tables to re-read, schema.table / db.table (default: every captured table)')
    .option('-c, --config <file>', 'pipeline config (YAML)')
    .option('--source <name>', 'source of the tables (default: the first)')
    .option('--keep-extra', 'do not delete replica rows that the source does not have')
    .action(async (tables: string[], opts: { config?: string; source?: string; keepExtra?: boolean }) => {
      if (!opts.config) throw new ConfigError(['-c, --config <file>: required']);
      const cfg = await loadConfig(opts.config);
      setLogger(createLogger(cfg.log.level));
      await checkRedis(cfg.redis.url);
      const source = findSource(cfg, opts.source);
      const kind = urlKind(source.url)!;
      const db = decodeURIComponent(new URL(source.url.replace(/^mariadb:/i, 'mysql:')).pathname.replace(/^\//, '')) || 'postgres';
      let ids = tables.map((t) => parseTableArg(t, kind, db));
      if (ids.length === 0) {
        const r = await openReader(source.url, { include: source.tables.include, exclude: source.tables.exclude });
        try {
          ids = await r.listTables();
        } finally {
          await r.close();
        }
      }
      let progress: { stop(): Promise<void> } | undefined;
      // The bars read Redis on their own connection: they outlive the run's (final numbers).
      const redis = redisConnection(cfg.redis.url);
      try {
        const res = await runIncrementalSnapshot(cfg, {
          source: source.name,
          tables: ids,
          deleteExtra: !opts.keepExtra,
          onPlanned: (_store, runId) => {
            process.stderr.write(`incremental snapshot ${runId}: ${ids.length} table(s)\n`);
            progress = showProgress(new RunStore(redis, cfg.name), runId);
          },
        });
        await progress?.stop();
        process.stdout.write(`snapshot ${res.runId}: ${res.rows} rows re-read in ${(res.elapsedMs / 1000).toFixed(1)} s\n`);
        process.exitCode = EXIT.ok;
      } finally {
        await progress?.stop();
        redis.disconnect();
      }
    });

  snap
    .command('worker')
    .description('run snapshot chunk and window jobs until SIGINT/SIGTERM (add processes to go faster); takes -c like snapshot')
    .option('--concurrency <n>', 'jobs at once (default: snapshot.concurrency)')
    .action(async (opts: { concurrency?: string }, cmd: Command) => {
      // -c is the parent's option (commander parses it wherever it appears).
      const file = (cmd.parent?.opts() as { config?: string } | undefined)?.config;
      if (!file) throw new ConfigError(['-c, --config <file>: required']);
      const cfg = await loadConfig(file);
      setLogger(createLogger(cfg.log.level));
      await checkRedis(cfg.redis.url);
      let kafka: ReturnType<typeof createKafka> | undefined;
      const n = opts.concurrency ? Number(opts.concurrency) : cfg.snapshot.concurrency;
      const chunks = startSnapshotWorker(cfg, () => (kafka ??= createKafka(cfg.kafka)), n);
      const windows = startIncrementalWorker(cfg, n);
      process.stderr.write(`snapshot worker ${process.pid} ready\n`);
      await new Promise<void>((resolve) => {
        for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve());
      });
      await Promise.all([chunks.close(), windows.close()]);
      process.exitCode = EXIT.ok;
    });
}
