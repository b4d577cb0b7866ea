import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { createSource } from '../../connectors/index.js';
import { createCodec } from '../../pipeline/codec.js';
import { createKafka } from '../../pipeline/kafka.js';
import { expandMesh, isMeshSource, prepareMesh, wrapMeshSource } from '../../pipeline/mesh/index.js';
import { loadResolvers } from '../../sinks/conflict/index.js';
import { runSink } from '../../pipeline/sink-runner.js';
import { initialSnapshotHooks } from '../../pipeline/snapshot/initial.js';
import { runSource } from '../../pipeline/source-runner.js';
import { createLogger, setLogger } from '../../util/log.js';
import { serveMetrics } from '../../util/metrics.js';

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run the sources and sinks the config describes, until SIGINT/SIGTERM')
    .requiredOption('-c, --config <file>', 'pipeline config (YAML)')
    .option('--only <names>', 'comma-separated source/sink names to run (default: all)')
    .action(async (opts: { config: string; only?: string }) => {
      // A `mesh` block becomes one source and one sink per node (pipeline/mesh).
      const cfg = expandMesh(await loadConfig(opts.config));
      const log = createLogger(cfg.log.level);
      setLogger(log);
      const only = opts.only ? new Set(opts.only.split(',')) : undefined;
      const ac = new AbortController();
      for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => ac.abort(new Error(sig)));
      if (cfg.metrics) await serveMetrics(cfg.metrics.port);
      const kafka = createKafka(cfg.kafka);
      // kafka.encoding: json, or avro with the schema registry (one codec, its caches shared).
      const codec = createCodec(cfg, kafka);
      const tasks: Promise<void>[] = [];
      await prepareMesh(cfg, log, only);
      // Custom conflict resolvers are modules: loaded before any sink is built.
      await loadResolvers([...cfg.sinks.map((k) => k.conflict), ...(cfg.mesh ? [cfg.mesh.conflict] : [])]);
      for (const source of cfg.sources) {
        if (only && !only.has(source.name)) continue;
        // Mesh nodes stream only: a node joins with its tables already in place (docs/multi-master.md).
        const hooks = isMeshSource(cfg, source.name) ? {} : initialSnapshotHooks(cfg, source, () => kafka, log.child({ source: source.name, component: 'snapshot' }));
        const connector = wrapMeshSource(cfg, source, await createSource(source, cfg, hooks));
        // MySQL resumes from the stored checkpoint: events and checkpoint commit in one Kafka transaction.
        tasks.push(runSource({ cfg, source, connector, kafka, codec, log: log.child({ source: source.name }), signal: ac.signal, transactional: connector.kind === 'mysql' }));
      }
      for (const sink of cfg.sinks) {
        if (only && !only.has(sink.name)) continue;
        tasks.push(runSink({ cfg, sink, kafka, codec, log: log.child({ sink: sink.name }), signal: ac.signal }));
      }
      if (tasks.length === 0) throw new Error('nothing to run: the config has no sources or sinks (or --only matched none)');
      // The first permanent failure stops everything: a half-running pipeline hides problems.
      try {
        await Promise.all(tasks.map((t) => t.catch((err) => { ac.abort(err); throw err; })));
      } finally {
        await codec.close?.();
      }
    });
}
