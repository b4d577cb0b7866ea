/**
 * CPU time of process trees, from /proc (Linux): what each part of a run cost in core-seconds,
 * not only how long it took. A tree's time is its live processes' own time plus what its root
 * has collected from children that exited (PostgreSQL's backends come and go).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const TICK = 100; // USER_HZ: 100 on every Linux we run on (getconf CLK_TCK)

interface Stat {
  pid: number;
  ppid: number;
  /** utime + stime, seconds. */
  own: number;
  /** cutime + cstime, seconds (children waited for). */
  children: number;
}

function readStat(pid: number): Stat | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command may hold spaces and parentheses: fields start after the last ')'.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { pid, ppid: Number(f[1]), own: (Number(f[11]) + Number(f[12])) / TICK, children: (Number(f[13]) + Number(f[14])) / TICK };
  } catch {
    return null;
  }
}

/** Every process's stat, read once; `tree(root)` gives the CPU seconds of `root`, its live descendants and its waited-for children. */
function processSnapshot(): { tree(root: number): number } {
  const byPid = new Map<number, Stat>();
  const kids = new Map<number, Stat[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const s = readStat(Number(d));
    if (!s) continue;
    byPid.set(s.pid, s);
    const k = kids.get(s.ppid);
    if (k) k.push(s);
    else kids.set(s.ppid, [s]);
  }
  return {
    tree(root) {
      const r = byPid.get(root);
      if (!r) return 0;
      let total = r.own + r.children;
      const stack = [...(kids.get(root) ?? [])];
      while (stack.length > 0) {
        const s = stack.pop()!;
        total += s.own;
        stack.push(...(kids.get(s.pid) ?? []));
      }
      return total;
    },
  };
}

/** The pid in an infra server's pid file (`.run/<name>/<name>.pid`, or PostgreSQL's `data/postmaster.pid`). */
export function serverPid(runDir: string, name: string): number | null {
  for (const f of [join(runDir, name, 'data', 'postmaster.pid'), join(runDir, name, `${name}.pid`)]) {
    if (!existsSync(f)) continue;
    const pid = Number(readFileSync(f, 'utf8').split('\n')[0]!.trim());
    if (Number.isInteger(pid) && pid > 0) return pid;
  }
  return null;
}

/** Snapshots the CPU of named process trees; `since()` gives core-seconds used per name since then. */
export function cpuMeter(roots: Record<string, number | null>): { since(): Record<string, number> } {
  const read = (): Record<string, number> => {
    const snap = processSnapshot();
    return Object.fromEntries(Object.entries(roots).map(([k, pid]) => [k, pid === null ? 0 : snap.tree(pid)]));
  };
  const at = read();
  return {
    since() {
      const now = read();
      return Object.fromEntries(Object.keys(roots).map((k) => [k, Math.round((now[k]! - at[k]!) * 100) / 100]));
    },
  };
}
