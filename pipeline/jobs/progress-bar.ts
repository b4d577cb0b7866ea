import cliProgress from 'cli-progress';
import { type RunStore, formatDuration, formatProgressLine, formatRate, progressView } from './progress.js';

/**
 * Terminal progress of a run: one bar per table (rows done/total, rows/s, ETA) on a TTY, a
 * line per table every few seconds otherwise (logs, CI). Reads the same Redis counters as
 * `cdc status`, so both show the same numbers.
 */
export function showProgress(store: RunStore, runId: string, out: NodeJS.WriteStream = process.stderr): { stop(): Promise<void> } {
  const tty = out.isTTY === true;
  const multi = tty
    ? new cliProgress.MultiBar(
        { stream: out, format: '{table} [{bar}] {percentage}% {value}/{total} rows | {rate} | ETA {eta}', hideCursor: true, clearOnComplete: false, autopadding: true, barsize: 30 },
        cliProgress.Presets.shades_classic,
      )
    : null;
  const bars = new Map<string, cliProgress.SingleBar>();
  let lastLine = 0;
  const tick = async () => {
    const tables = (await store.tables(runId)).map((t) => progressView(t));
    if (multi) {
      for (const v of tables) {
        const payload = { table: v.table.padEnd(28).slice(0, 28), rate: formatRate(v.rate), eta: v.done ? 'done' : formatDuration(v.etaS) };
        let bar = bars.get(v.table);
        if (!bar) bars.set(v.table, (bar = multi.create(Math.max(v.estRows, 1), v.rowsDone, payload)));
        bar.setTotal(Math.max(v.estRows, v.rowsDone, 1));
        bar.update(v.rowsDone, payload);
      }
    } else if (Date.now() - lastLine > 5000 || tables.every((t) => t.done)) {
      lastLine = Date.now();
      for (const v of tables) out.write(`${formatProgressLine(v)}\n`);
    }
  };
  let running = true;
  let stopped: Promise<void> | null = null;
  const loop = (async () => {
    while (running) {
      await tick().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 500));
    }
    await tick().catch(() => undefined);
  })();
  return {
    stop() {
      stopped ??= (async () => {
        running = false;
        await loop;
        multi?.stop();
      })();
      return stopped;
    },
  };
}
