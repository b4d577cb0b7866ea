import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { urlKind } from '../../config/schema.js';
import { checkRedis } from '../../pipeline/jobs/queues.js';
import { findSource, parseTableArg } from '../../pipeline/jobs/readers.js';
import { formatVerifyReport, runVerify } from '../../pipeline/jobs/verify.js';
import { createLogger, setLogger } from '../../util/log.js';
import { EXIT } from '../exit.js';

export function registerVerify(program: Command): void {
  program
    .command('verify')
    .description('compare a source with a sink replica, table by table in checksummed chunks; exit 1 on any difference')
    .requiredOption('-c, --config <file>', 'pipeline config (YAML)')
    .option('--source <name>', 'source to verify (default: the first)')
    .option('--sink <name>', 'replica to compare with (default: the only sink of the source)')
    .option('--json', 'print the report as JSON')
    .argument('[tables...]', 'tables to compare, schema.table / db.table (default: every captured table)')
    .action(async (tables: string[], opts: { config: string; source?: string; sink?: string; json?: boolean }) => {
      const cfg = await loadConfig(opts.config);
      setLogger(createLogger(cfg.log.level));
      await checkRedis(cfg.redis.url);
      const source = findSource(cfg, opts.source);
      const kind = urlKind(source.url)!;
      const db = decodeURIComponent(new URL(source.url.replace(/^mariadb:/i, 'mysql:')).pathname.replace(/^\//, ''));
      const ids = tables.length > 0 ? tables.map((t) => parseTableArg(t, kind, db)) : undefined;
      const report = await runVerify(cfg, { source: opts.source, sink: opts.sink, ...(ids ? { tables: ids } : {}) });
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatVerifyReport(report));
      process.exitCode = report.equal ? EXIT.ok : EXIT.failure;
    });
}
