// infra CLI: `npx tsx infra/cli.ts <command> [names...]` (infra/up, infra/down, infra/status call it).
import { tailFile } from './proc.js';
import { cluster, defaultServers, endpoints, faultServers, serversByName, type Server, type ServerStatus } from './servers.js';

const USAGE = `usage: infra/cli.ts <command> [names...]

  up [names...]        start the default set (or the named servers), wait until healthy
  down [names...]      stop the default set, the kafka cluster and the fault-test servers
                       (or the named servers)
  status [names...]    health table; exit 0 only if all are healthy
  start <names...>     same as up, names required
  stop <names...>      same as down, names required
  restart <names...>   stop, then start
  kill9 <names...>     SIGKILL the server process group (fault injection)
  logs <name> [lines]  last lines of the server's log (default 50)
  endpoints            connection strings of the default set, as JSON

names: ${[...serversByName().keys()].join(', ')}`;

class UsageError extends Error {}

function resolveNames(names: string[], fallback: readonly Server[]): Server[] {
  if (names.length === 0) return [...fallback];
  const known = serversByName();
  const out: Server[] = [];
  for (const n of names) {
    const servers = known.get(n);
    if (!servers) throw new UsageError(`unknown server '${n}'; known: ${[...known.keys()].join(', ')}`);
    for (const s of servers) if (!out.includes(s)) out.push(s);
  }
  return out;
}

interface Row {
  status: ServerStatus;
  /** e.g. "started", "already-running", "stopped", error summary. */
  note: string;
  seconds: number | undefined;
}

function printTable(rows: Row[], timeHeader: string): void {
  const header = ['NAME', 'KIND', 'PORT', 'PID', 'STATUS', timeHeader, 'NOTE'];
  const lines = rows.map((r) => [
    r.status.name,
    r.status.kind,
    String(r.status.port),
    r.status.pid === undefined ? '-' : String(r.status.pid),
    r.status.state,
    r.seconds === undefined ? '-' : r.seconds.toFixed(1),
    r.note,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  for (const l of [header, ...lines]) {
    console.log(l.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd());
  }
}

/** Run `op` on every server concurrently; collect timings, status and failures. */
async function runAll(
  servers: Server[],
  op: (s: Server) => Promise<string>,
): Promise<{ rows: Row[]; failures: { server: Server; error: Error }[] }> {
  const failures: { server: Server; error: Error }[] = [];
  const rows = await Promise.all(
    servers.map(async (server): Promise<Row> => {
      const t0 = performance.now();
      let note: string;
      try {
        note = await op(server);
      } catch (e) {
        failures.push({ server, error: e as Error });
        note = `FAILED: ${(e as Error).message.split('\n')[0] ?? ''}`;
      }
      const seconds = (performance.now() - t0) / 1000;
      return { status: await server.status(), note, seconds };
    }),
  );
  return { rows, failures };
}

function reportFailures(failures: { server: Server; error: Error }[]): void {
  for (const { server, error } of failures) {
    const msg = error.message;
    console.error(`\n${server.name} FAILED: ${msg.split('\n')[0]}`);
    // Errors from the helper carry the log tail already; others get it appended here.
    if (msg.includes('--- last 20 lines')) console.error(msg.split('\n').slice(1).join('\n'));
    else console.error(`--- last 20 lines of ${server.logFile} ---\n${tailFile(server.logFile, 20) || '(empty)'}`);
  }
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...args] = argv;
  switch (cmd) {
    case 'up':
    case 'start': {
      if (cmd === 'start' && args.length === 0) throw new UsageError('start: name at least one server');
      const t0 = performance.now();
      const { rows, failures } = await runAll(resolveNames(args, defaultServers), (s) => s.start());
      if (args.includes(cluster.name) && failures.length === 0) {
        // Also wait until every node's metadata lists all nodes.
        await cluster.start().catch((e: unknown) => failures.push({ server: cluster.brokers[0]!, error: e as Error }));
      }
      printTable(rows, 'START_S');
      console.log(`total ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      reportFailures(failures);
      if (failures.length > 0) {
        console.error(`\nfailed: ${failures.map((f) => f.server.name).join(', ')}`);
        return 1;
      }
      return 0;
    }
    case 'down':
    case 'stop': {
      if (cmd === 'stop' && args.length === 0) throw new UsageError('stop: name at least one server');
      const servers = resolveNames(args, [...defaultServers, ...cluster.brokers, ...Object.values(faultServers)]);
      const { rows, failures } = await runAll(servers, async (s) => {
        const pid = s.pid();
        await s.stop();
        return pid === undefined ? ((await s.healthy()) ? 'external, left alone' : 'was not running') : `stopped pid ${pid}`;
      });
      printTable(rows, 'STOP_S');
      reportFailures(failures);
      return failures.length > 0 ? 1 : 0;
    }
    case 'restart': {
      if (args.length === 0) throw new UsageError('restart: name at least one server');
      const { rows, failures } = await runAll(resolveNames(args, []), (s) => s.restart());
      printTable(rows, 'SECONDS');
      reportFailures(failures);
      return failures.length > 0 ? 1 : 0;
    }
    case 'kill9': {
      if (args.length === 0) throw new UsageError('kill9: name at least one server');
      const { rows, failures } = await runAll(resolveNames(args, []), async (s) => {
        const pid = s.pid();
        await s.kill9();
        return pid === undefined ? 'was not running' : `killed pid ${pid}`;
      });
      printTable(rows, 'SECONDS');
      reportFailures(failures);
      return failures.length > 0 ? 1 : 0;
    }
    case 'status': {
      // Without names: the default set, plus cluster brokers and fault-test servers that are running.
      const servers =
        args.length > 0
          ? resolveNames(args, [])
          : [
              ...defaultServers,
              ...[...cluster.brokers, ...Object.values(faultServers)].filter((s) => s.pid() !== undefined),
            ];
      const now = Date.now();
      const rows = await Promise.all(
        servers.map(async (s): Promise<Row> => {
          const status = await s.status();
          const up = status.since ? (now - status.since.getTime()) / 1000 : undefined;
          return { status, note: status.state === 'external' ? 'not started by us' : '', seconds: up };
        }),
      );
      printTable(rows, 'UPTIME_S');
      return rows.every((r) => r.status.state === 'healthy' || r.status.state === 'external') ? 0 : 1;
    }
    case 'logs': {
      const [name, lines] = args;
      if (!name) throw new UsageError('logs: name a server');
      for (const s of resolveNames([name], [])) {
        console.log(`--- ${s.logFile}`);
        console.log(tailFile(s.logFile, lines ? Number(lines) : 50));
      }
      return 0;
    }
    case 'endpoints':
      console.log(JSON.stringify(endpoints, null, 2));
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return cmd === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command '${cmd}'`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof UsageError) {
      console.error(`${e.message}\n\n${USAGE}`);
      process.exit(2);
    }
    console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exit(1);
  },
);
