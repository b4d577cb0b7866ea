// Small OS helpers: processes, TCP probes, users, files, cross-process locks.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { dirname } from 'node:path';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;

/** Fields of /proc/<pid>/stat we use (state, ppid, process group), or undefined if gone. */
function procStat(pid: number): { state: string; ppid: number; pgrp: number } | undefined {
  try {
    const raw = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid pgrp ..."; comm may contain spaces and parens.
    const rest = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0] ?? '?', ppid: Number(rest[1]), pgrp: Number(rest[2]) };
  } catch {
    return undefined;
  }
}

/** True if the process exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const st = procStat(pid);
  return st === undefined ? true : st.state !== 'Z' && st.state !== 'X';
}

/** Live (non-zombie) members of a process group. */
export function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const st = procStat(Number(entry));
    if (st && st.pgrp === pgid && st.state !== 'Z' && st.state !== 'X') out.push(Number(entry));
  }
  return out;
}

/**
 * Working directory of a process; `null` when it cannot be read (another user's
 * process while we are not root), `undefined` when the process is gone.
 */
export function processCwd(pid: number): string | null | undefined {
  try {
    return fs.readlinkSync(`/proc/${pid}/cwd`);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'EACCES' || code === 'EPERM' ? null : undefined;
  }
}

/** Send a signal, ignoring "no such process". Returns false if the target was gone. */
export function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw e;
  }
}

/** Poll `cond` every `intervalMs` until it is true or `timeoutMs` passed; returns the last result. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 100,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

/** Does something accept TCP connections on host:port? */
export function tcpOpen(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host });
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/** Reject after `ms` unless `p` settles first. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export interface UserIds {
  uid: number;
  gid: number;
}

const idCache = new Map<string, UserIds>();
/** uid/gid of a system user (e.g. 'postgres', 'mysql'). */
export function userIds(user: string): UserIds {
  let ids = idCache.get(user);
  if (!ids) {
    const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
    ids = { uid, gid };
    idCache.set(user, ids);
  }
  return ids;
}

/** Last `lines` lines of a text file ('' if it does not exist); reads at most the last 64 KiB. */
export function tailFile(path: string, lines = 20): string {
  let fd: number | undefined;
  try {
    fd = fs.openSync(path, 'r');
    const size = fs.fstatSync(fd).size;
    const len = Math.min(size, 64 * 1024);
    const buf = Buffer.alloc(len);
    fs.readSync(fd, buf, 0, len, size - len);
    const all = buf.toString('utf8').replace(/\n+$/, '').split('\n');
    return all.slice(-lines).join('\n');
  } catch {
    return '';
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Run as this user (only when we are root). */
  user?: UserIds;
  /** Append stdout and stderr here. */
  logFile: string;
  timeoutMs?: number;
}

/** A helper command failed; its output is in `logFile`. */
export class CommandError extends Error {
  constructor(
    message: string,
    readonly logFile: string,
  ) {
    super(message);
    this.name = 'CommandError';
  }
}

/** Run a command to completion with output appended to a log file; rejects with the log tail. */
export async function runCommand(cmd: string, args: string[], opts: RunOptions): Promise<void> {
  fs.mkdirSync(dirname(opts.logFile), { recursive: true });
  fs.appendFileSync(opts.logFile, `\n==== ${new Date().toISOString()} run: ${cmd} ${args.join(' ')}\n`);
  const fd = fs.openSync(opts.logFile, 'a');
  try {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', fd, fd],
      ...(opts.user && isRoot() ? { uid: opts.user.uid, gid: opts.user.gid } : {}),
    });
    const timeoutMs = opts.timeoutMs ?? 300_000;
    const code = await new Promise<number | string>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`cannot run ${cmd}: ${e.message}`));
      });
      child.once('exit', (c, s) => {
        clearTimeout(timer);
        resolve(c ?? s ?? 'unknown');
      });
    });
    if (code !== 0) {
      throw new CommandError(
        `${cmd} ${args.join(' ')} failed (exit ${code}); last lines of ${opts.logFile}:\n${tailFile(opts.logFile)}`,
        opts.logFile,
      );
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Unix socket paths are limited to 107 bytes (sun_path). */
export function checkSocketPath(path: string): void {
  if (Buffer.byteLength(path) > 107) {
    throw new Error(`unix socket path too long (${Buffer.byteLength(path)} > 107 bytes): ${path}; use a shorter CDC_RUN_DIR`);
  }
}

/** Write a file atomically (temp file + rename). */
export function writeFileAtomic(path: string, data: string, mode = 0o644): void {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  fs.writeFileSync(tmp, data, { mode });
  fs.renameSync(tmp, path);
}

/** Create `path` with `data` unless it exists (atomic across processes); returns the file's content. */
export function createOnce(path: string, make: () => string): string {
  try {
    return fs.readFileSync(path, 'utf8').trim();
  } catch {
    /* create below */
  }
  fs.mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  fs.writeFileSync(tmp, `${make()}\n`);
  try {
    fs.linkSync(tmp, path); // fails with EEXIST if someone else won the race
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  } finally {
    fs.unlinkSync(tmp);
  }
  return fs.readFileSync(path, 'utf8').trim();
}

const localLocks = new Map<string, Promise<unknown>>();

/**
 * Run `fn` holding an exclusive lock: serialised within this process (promise chain) and
 * across processes (a lock file created with O_EXCL holding our pid; a lock whose
 * holder is dead, or older than `staleMs`, is broken).
 */
export async function withLock<T>(lockFile: string, fn: () => Promise<T>, timeoutMs = 600_000): Promise<T> {
  const prev = localLocks.get(lockFile) ?? Promise.resolve();
  const run = prev.catch(() => undefined).then(() => withFileLock(lockFile, fn, timeoutMs));
  const tail = run.catch(() => undefined);
  localLocks.set(lockFile, tail);
  void tail.then(() => {
    if (localLocks.get(lockFile) === tail) localLocks.delete(lockFile);
  });
  return run;
}

async function withFileLock<T>(lockFile: string, fn: () => Promise<T>, timeoutMs: number): Promise<T> {
  fs.mkdirSync(dirname(lockFile), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      fs.writeFileSync(lockFile, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let stale = false;
    try {
      const holder = Number(fs.readFileSync(lockFile, 'utf8').trim());
      const age = Date.now() - fs.statSync(lockFile).mtimeMs;
      stale = !Number.isInteger(holder) || holder <= 0 || !isAlive(holder) || age > timeoutMs;
    } catch {
      continue; // vanished between open and read: retry at once
    }
    if (stale) {
      fs.rmSync(lockFile, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for lock ${lockFile}`);
    await sleep(100);
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lockFile, { force: true });
  }
}
