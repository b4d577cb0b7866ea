// The end-to-end demo: what `npm run demo` runs after the servers are up.
import { defaultServers } from '../infra/servers.js';

async function main(): Promise<number> {
  const rows = await Promise.all(defaultServers.map(async (s) => ({ name: s.name, url: s.url, healthy: await s.healthy() })));
  for (const r of rows) process.stdout.write(`${r.healthy ? 'ok  ' : 'DOWN'} ${r.name.padEnd(14)} ${r.url}\n`);
  return rows.every((r) => r.healthy) ? 0 : 1;
}

process.exitCode = await main();
