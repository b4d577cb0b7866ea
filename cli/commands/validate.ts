import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { expandMesh } from '../../pipeline/mesh/index.js';
import { redactUrl } from '../../util/redact.js';
import { EXIT } from '../exit.js';

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description('check a config file; prints one line per problem and exits 2 if there is any')
    .requiredOption('-c, --config <file>', 'pipeline config (YAML)')
    .action(async (opts: { config: string }) => {
      // A mesh is listed as the sources and sinks it expands to (one of each per node).
      const cfg = expandMesh(await loadConfig(opts.config));
      process.stdout.write(`${opts.config}: ok (pipeline ${cfg.name}: ${cfg.sources.length} source(s), ${cfg.sinks.length} sink(s))\n`);
      for (const s of cfg.sources) process.stdout.write(`  source ${s.name}: ${redactUrl(s.url)}\n`);
      for (const s of cfg.sinks) process.stdout.write(`  sink   ${s.name}: ${redactUrl(s.url)} (mode ${s.mode}, conflicts ${s.conflict.strategy})\n`);
      process.exitCode = EXIT.ok;
    });
}
