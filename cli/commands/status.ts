import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { RunStore, formatDuration, formatRate, progressView } from '../../pipeline/jobs/progress.js';
import { checkRedis, redisConnection } from '../../pipeline/jobs/queues.js';
import { createLogger, setLogger } from '../../util/log.js';
import { EXIT } from '../exit.js';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('snapshot, backfill and verify runs with per-table progress (rows done/total, rows/s, ETA)')
    .requiredOption('-c, --config <file>', 'pipeline config (YAML)')
    .option('--run <id>', 'only this run')
    .option('-n, --limit <n>', 'latest runs to show', '10')
    .option('--json', 'print JSON')
    .action(async (opts: { config: string; run?: string; limit: string; json?: boolean }) => {
      const cfg = await loadConfig(opts.config);
      setLogger(createLogger(cfg.log.level));
      await checkRedis(cfg.redis.url);
      const redis = redisConnection(cfg.redis.url);
      try {
        const store = new RunStore(redis, cfg.name);
        const runs = opts.run ? [await store.get(opts.run)].filter((r) => r !== null) : await store.list(Number(opts.limit));
        const now = Date.now();
        const detailed = await Promise.all(runs.map(async (r) => ({ ...r, tables: (await store.tables(r.id)).map((t) => progressView(t, now)) })));
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(detailed, null, 2)}\n`);
        } else if (detailed.length === 0) {
          process.stdout.write(`no snapshot or verify runs for pipeline ${cfg.name}\n`);
        } else {
          for (const r of detailed) {
            const rows = r.tables.reduce((a, t) => a + t.rowsDone, 0);
            const total = r.tables.reduce((a, t) => a + t.estRows, 0);
            const chunks = r.tables.reduce((a, t) => a + t.chunksDone, 0);
            const allChunks = r.tables.reduce((a, t) => a + t.chunks, 0);
            const elapsed = ((r.finishedAt ?? now) - r.startedAt) / 1000;
            process.stdout.write(
              `${r.id}  ${r.kind}  source ${r.source}${r.sink ? ` -> ${r.sink}` : ''}  ${r.status}${r.note ? ` (${r.note})` : ''}  ${rows}/${total} rows  chunks ${chunks}/${allChunks}  ${formatDuration(elapsed)}  started ${new Date(r.startedAt).toISOString()}\n`,
            );
            for (const t of r.tables) {
              const pct = t.estRows > 0 ? Math.min(100, (100 * t.rowsDone) / t.estRows) : t.done ? 100 : 0;
              process.stdout.write(`  ${t.table.padEnd(32)} ${String(t.rowsDone).padStart(10)}/${String(t.estRows).padEnd(10)} ${pct.toFixed(1).padStart(5)}%  chunks ${t.chunksDone}/${t.chunks}  ${formatRate(t.rate).padStart(9)}  ETA ${t.done ? 'done' : formatDuration(t.etaS)}\n`);
            }
          }
        }
        process.exitCode = EXIT.ok;
      } finally {
        redis.disconnect();
      }
    });
}
