import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import type { PipelineConfig, SourceConfig } from '../../config/schema.js';
import { createCodec } from '../../pipeline/codec.js';
import { createKafka } from '../../pipeline/kafka.js';
import { parkedTopics, readParked, replayParked, replayedOffsets } from '../../pipeline/parked.js';
import { ConfigError } from '../../schemas/errors.js';
import { createLogger, setLogger } from '../../util/log.js';

/**
 * `cdc parked list|replay`: the events of tables stopped by a refused schema change (see
 * docs/avro.md). `list` shows what is parked and why; `replay` publishes a table's parked events
 * to its topic once the cause is fixed (run it with the pipeline stopped).
 */

function sourcesOf(cfg: PipelineConfig, only?: string): SourceConfig[] {
  if (only === undefined) return cfg.sources;
  const found = cfg.sources.filter((s) => s.name === only);
  if (found.length === 0) throw new ConfigError([`--source: no source named "${only}" in the config`]);
  return found;
}

export function registerParked(program: Command): void {
  const parked = program.command('parked').description('events of tables stopped by a refused schema change: list, replay');

  parked
    .command('list')
    .description('parked events per source and table, with the reason')
    .requiredOption('-c, --config <file>', 'pipeline config (YAML)')
    .option('--source <name>', 'only this source')
    .action(async (opts: { config: string; source?: string }) => {
      const cfg = await loadConfig(opts.config);
      setLogger(createLogger(cfg.log.level));
      const kafka = createKafka(cfg.kafka);
      for (const source of sourcesOf(cfg, opts.source)) {
        const records = await readParked(kafka, cfg, source);
        const replayed = await replayedOffsets(kafka, cfg, source);
        const byTable = new Map<string, typeof records>();
        for (const r of records) byTable.set(r.table, [...(byTable.get(r.table) ?? []), r]);
        process.stdout.write(`source ${source.name} (${parkedTopics(cfg, source).parked}): ${byTable.size === 0 ? 'nothing parked' : `${byTable.size} table(s)`}\n`);
        for (const [table, rs] of byTable) {
          const done = replayed.get(table) ?? -1n;
          const pending = rs.filter((r) => r.offset > done).length;
          process.stdout.write(`  ${table}: ${rs.length} event(s), ${pending} not replayed; ${rs[0]!.code}: ${rs[0]!.reason}\n`);
        }
      }
    });

  parked
    .command('replay')
    .description("publish a table's parked events to its topic (stop the pipeline first; fix the cause, e.g. set the subject's compatibility to NONE)")
    .requiredOption('-c, --config <file>', 'pipeline config (YAML)')
    .requiredOption('--source <name>', 'source the table belongs to')
    .requiredOption('--table <name>', 'table as listed: db.schema.table or db.table')
    .action(async (opts: { config: string; source: string; table: string }) => {
      const cfg = await loadConfig(opts.config);
      const log = createLogger(cfg.log.level);
      setLogger(log);
      const [source] = sourcesOf(cfg, opts.source);
      const kafka = createKafka(cfg.kafka);
      const codec = createCodec(cfg, kafka);
      const r = await replayParked({ kafka, cfg, source: source!, table: opts.table, codec, log }).finally(() => codec.close?.());
      process.stdout.write(`replayed ${r.replayed} parked event(s) of ${opts.table}${r.alreadyReplayed > 0 ? ` (${r.alreadyReplayed} replayed before)` : ''}\n`);
    });
}
