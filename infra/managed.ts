// The one process-management helper used by every server kind: run dir layout,
// one-time initialisation, detached spawn with a pid file, wait for health with a
// timeout, clean stop (signal, then SIGKILL fallback), kill -9 for fault tests.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { dirname, join } from 'node:path';
import { runRoot } from './env.js';
import {
  CommandError,
  groupMembers,
  isAlive,
  isRoot,
  processCwd,
  runCommand,
  signal,
  sleep,
  tailFile,
  tcpOpen,
  type UserIds,
  userIds,
  waitFor,
  withLock,
} from './proc.js';

export type ServerKind = 'kafka' | 'postgres' | 'mariadb' | 'redis' | 'registry';
export type ServerState = 'healthy' | 'unhealthy' | 'stopped' | 'external';

export interface ServerStatus {
  name: string;
  kind: ServerKind;
  port: number;
  pid: number | undefined;
  state: ServerState;
  /** When the running process was started (pid file time), if we manage it. */
  since: Date | undefined;
}

/** What the last `start()` call of this object did. */
export type StartOutcome = 'started' | 'already-running' | 'external';

export interface Server {
  readonly name: string;
  readonly kind: ServerKind;
  readonly port: number;
  /** Connection URL; for Kafka the bootstrap 'host:port'. */
  readonly url: string;
  /** `<runRoot>/<name>`: data dir, log, pid file, config. */
  readonly runDir: string;
  readonly dataDir: string;
  readonly logFile: string;
  /** Idempotent: initialises the data dir once, starts the process unless it runs, waits until healthy. */
  start(): Promise<StartOutcome>;
  /** Clean stop (SIGTERM, SIGINT for PostgreSQL), SIGKILL after a timeout. No-op when stopped or external. */
  stop(): Promise<void>;
  /** SIGKILL the server's process group; resolves when the processes are gone and the port is closed. */
  kill9(): Promise<void>;
  /** stop() then start(). */
  restart(): Promise<StartOutcome>;
  /** stop() and delete the run dir (data included). */
  destroy(): Promise<void>;
  healthy(): Promise<boolean>;
  /** Pid of the running server process we manage, if any. */
  pid(): number | undefined;
  status(): Promise<ServerStatus>;
}

export interface LaunchCommand {
  cmd: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
}

/** Context handed to the per-kind hooks. */
export interface ServerContext {
  readonly name: string;
  readonly runDir: string;
  readonly dataDir: string;
  readonly logFile: string;
  /** The owner's uid/gid when we are root and the spec has an owner. */
  readonly owner: UserIds | undefined;
  /** Run a helper command to completion, output to the server log, as the owner when `asOwner`. */
  run(cmd: string, args: string[], opts?: { asOwner?: boolean; env?: NodeJS.ProcessEnv }): Promise<void>;
}

/** Per-kind behaviour plugged into the generic helper. */
export interface ServerSpec {
  name: string;
  kind: ServerKind;
  port: number;
  url: string;
  /** Other ports the process listens on (must be free before a start). */
  extraPorts?: number[];
  /** System user owning the run dir (chowned when we are root). */
  owner?: string;
  /** Spawn the server process itself as `owner` (PostgreSQL refuses root). */
  runAsOwner?: boolean;
  /** Signal for a clean stop (default SIGTERM). */
  stopSignal?: NodeJS.Signals;
  startTimeoutMs?: number;
  stopTimeoutMs?: number;
  /** One-time data dir initialisation; re-run from scratch until it has succeeded once. */
  init?(ctx: ServerContext): Promise<void>;
  /** Before every launch: write config files, return the command to run (cwd = run dir). */
  command(ctx: ServerContext): LaunchCommand | Promise<LaunchCommand>;
  /** After the first healthy start of a fresh data dir (e.g. user fix-ups). */
  firstStart?(ctx: ServerContext): Promise<void>;
  /** Health probe (short timeouts, never throws). */
  probe(): Promise<boolean>;
  /**
   * If the port is taken by something we did not start and this returns true, the
   * server is used as is ("external": never stopped or killed by us).
   */
  acceptExternal?(): Promise<boolean>;
}

const MAX_LOG_BYTES = 64 * 1024 * 1024;

class ManagedServer implements Server {
  readonly name: string;
  readonly kind: ServerKind;
  readonly port: number;
  readonly url: string;
  readonly runDir: string;
  readonly dataDir: string;
  readonly logFile: string;
  private readonly pidFile: string;
  private readonly lockFile: string;
  private readonly initMarker: string;
  private readonly firstStartMarker: string;

  constructor(private readonly spec: ServerSpec) {
    this.name = spec.name;
    this.kind = spec.kind;
    this.port = spec.port;
    this.url = spec.url;
    this.runDir = join(runRoot(), spec.name);
    this.dataDir = join(this.runDir, 'data');
    this.logFile = join(this.runDir, `${spec.name}.log`);
    this.pidFile = join(this.runDir, `${spec.name}.pid`);
    this.lockFile = join(runRoot(), '.locks', `${spec.name}.lock`);
    this.initMarker = join(this.runDir, '.initialized');
    this.firstStartMarker = join(this.runDir, '.first-start-done');
  }

  private get startTimeoutMs(): number {
    return this.spec.startTimeoutMs ?? 120_000;
  }

  private get ports(): number[] {
    return [this.port, ...(this.spec.extraPorts ?? [])];
  }

  pid(): number | undefined {
    let pid: number;
    try {
      pid = Number(fs.readFileSync(this.pidFile, 'utf8').trim());
    } catch {
      return undefined;
    }
    if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return undefined;
    // Guard against pid reuse: all our servers run with their cwd inside the run dir.
    const cwd = processCwd(pid);
    if (cwd === undefined) return undefined;
    if (cwd === null) return pid;
    let dir = this.runDir;
    try {
      dir = fs.realpathSync(this.runDir);
    } catch {
      /* keep as is */
    }
    return cwd === dir || cwd.startsWith(`${dir}/`) ? pid : undefined;
  }

  async healthy(): Promise<boolean> {
    if (this.pid() !== undefined) return this.spec.probe();
    return this.spec.acceptExternal ? this.spec.acceptExternal() : false;
  }

  async status(): Promise<ServerStatus> {
    const pid = this.pid();
    let state: ServerState;
    if (pid !== undefined) state = (await this.spec.probe()) ? 'healthy' : 'unhealthy';
    else if (this.spec.acceptExternal && (await this.spec.acceptExternal())) state = 'external';
    else state = 'stopped';
    let since: Date | undefined;
    if (pid !== undefined) {
      try {
        since = fs.statSync(this.pidFile).mtime;
      } catch {
        since = undefined;
      }
    }
    return { name: this.name, kind: this.kind, port: this.port, pid, state, since };
  }

  start(): Promise<StartOutcome> {
    return withLock(this.lockFile, () => this.startLocked());
  }

  stop(): Promise<void> {
    return withLock(this.lockFile, () => this.stopLocked());
  }

  async restart(): Promise<StartOutcome> {
    await this.stop();
    return this.start();
  }

  async destroy(): Promise<void> {
    await withLock(this.lockFile, async () => {
      await this.stopLocked();
      fs.rmSync(this.runDir, { recursive: true, force: true });
    });
  }

  async kill9(): Promise<void> {
    const pid = this.pid();
    if (pid === undefined) {
      if (this.spec.acceptExternal && (await this.spec.acceptExternal())) {
        throw new Error(`${this.name}: the server on port ${this.port} was not started by us; not killing it`);
      }
      return;
    }
    const members = groupMembers(pid);
    // Detached spawn made the server a process-group leader: kill the whole group at once.
    if (!signal(-pid, 'SIGKILL')) signal(pid, 'SIGKILL');
    for (const m of members) signal(m, 'SIGKILL');
    await this.waitGone(pid, 30_000);
    await this.waitPortsClosed(10_000);
  }

  // ---------------------------------------------------------------- internals

  private context(): ServerContext {
    const owner = this.spec.owner && isRoot() ? userIds(this.spec.owner) : undefined;
    return {
      name: this.name,
      runDir: this.runDir,
      dataDir: this.dataDir,
      logFile: this.logFile,
      owner,
      run: (cmd, args, opts) =>
        runCommand(cmd, args, {
          cwd: this.runDir,
          logFile: this.logFile,
          ...(opts?.env ? { env: opts.env } : {}),
          ...(opts?.asOwner && owner ? { user: owner } : {}),
        }),
    };
  }

  private fail(msg: string): Error {
    const tail = tailFile(this.logFile, 20);
    return new Error(`${this.name}: ${msg}\n--- last 20 lines of ${this.logFile} ---\n${tail || '(empty)'}`);
  }

  private async startLocked(): Promise<StartOutcome> {
    const running = this.pid();
    if (running !== undefined) {
      // Ours and running: healthy, or still starting (another process launched it).
      await this.waitHealthy(running);
      return 'already-running';
    }
    fs.rmSync(this.pidFile, { force: true });
    if (await tcpOpen(this.port)) {
      if (this.spec.acceptExternal && (await this.spec.acceptExternal())) return 'external';
      throw this.fail(`port ${this.port} is already in use by a process we did not start`);
    }
    for (const p of this.spec.extraPorts ?? []) {
      if (await tcpOpen(p)) throw this.fail(`port ${p} is already in use by a process we did not start`);
    }

    const ctx = this.context();
    fs.mkdirSync(this.runDir, { recursive: true });
    if (ctx.owner) this.checkReachable(ctx.owner);
    this.rotateLog();
    fs.closeSync(fs.openSync(this.logFile, 'a'));
    if (ctx.owner) {
      // The server may reopen its log itself (mariadbd --log-error) after dropping to `owner`.
      fs.chownSync(this.runDir, ctx.owner.uid, ctx.owner.gid);
      fs.chownSync(this.logFile, ctx.owner.uid, ctx.owner.gid);
    }

    if (!fs.existsSync(this.initMarker)) {
      fs.rmSync(this.dataDir, { recursive: true, force: true });
      fs.rmSync(this.firstStartMarker, { force: true });
      try {
        await this.spec.init?.(ctx);
      } catch (e) {
        // Output of helper commands run via ctx.run is in our log already: keep the first line only.
        const msg = (e as Error).message;
        const ownLog = e instanceof CommandError && e.logFile === this.logFile;
        throw this.fail(`initialisation failed: ${ownLog ? msg.split('\n')[0] : msg}`);
      }
      fs.writeFileSync(this.initMarker, `${new Date().toISOString()}\n`);
    }

    const pid = await this.launch(ctx);
    await this.waitHealthy(pid);

    if (this.spec.firstStart && !fs.existsSync(this.firstStartMarker)) {
      try {
        await this.spec.firstStart(ctx);
      } catch (e) {
        throw this.fail(`first-start setup failed: ${(e as Error).message}`);
      }
      fs.writeFileSync(this.firstStartMarker, `${new Date().toISOString()}\n`);
    }
    return 'started';
  }

  /** Spawn the server detached (own session, stdio to the log file) and record its pid. */
  private async launch(ctx: ServerContext): Promise<number> {
    let launch: LaunchCommand;
    try {
      launch = await this.spec.command(ctx);
    } catch (e) {
      throw this.fail((e as Error).message);
    }
    const { cmd, args, env } = launch;
    fs.appendFileSync(this.logFile, `\n==== ${new Date().toISOString()} cdc-infra: starting ${this.name}: ${cmd} ${args.join(' ')}\n`);
    const fd = fs.openSync(this.logFile, 'a');
    let child;
    try {
      child = spawn(cmd, args, {
        cwd: this.runDir,
        env: env ?? process.env,
        detached: true,
        stdio: ['ignore', fd, fd],
        ...(this.spec.runAsOwner && ctx.owner ? { uid: ctx.owner.uid, gid: ctx.owner.gid } : {}),
      });
    } finally {
      fs.closeSync(fd);
    }
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    child.unref();
    const pid = child.pid;
    if (pid === undefined) throw this.fail(`could not spawn ${cmd}: ${(await spawnError).message}`);
    fs.writeFileSync(this.pidFile, `${pid}\n`);
    return pid;
  }

  private async waitHealthy(pid: number): Promise<void> {
    const deadline = Date.now() + this.startTimeoutMs;
    for (;;) {
      if (!isAlive(pid)) throw this.fail(`process ${pid} exited before becoming healthy`);
      if (await this.spec.probe()) return;
      if (Date.now() > deadline) throw this.fail(`not healthy after ${this.startTimeoutMs / 1000} s (pid ${pid})`);
      await sleep(200);
    }
  }

  private async stopLocked(): Promise<void> {
    const pid = this.pid();
    if (pid === undefined) {
      fs.rmSync(this.pidFile, { force: true });
      return;
    }
    signal(pid, this.spec.stopSignal ?? 'SIGTERM');
    const stopped = await waitFor(() => !isAlive(pid), this.spec.stopTimeoutMs ?? 60_000, 100);
    if (!stopped) {
      fs.appendFileSync(this.logFile, `\n==== ${new Date().toISOString()} cdc-infra: clean stop timed out, SIGKILL\n`);
      if (!signal(-pid, 'SIGKILL')) signal(pid, 'SIGKILL');
    }
    await this.waitGone(pid, 30_000);
    fs.rmSync(this.pidFile, { force: true });
  }

  /** Wait until the process and the rest of its process group are gone (SIGKILL stragglers). */
  private async waitGone(pid: number, timeoutMs: number): Promise<void> {
    const gone = () => !isAlive(pid) && groupMembers(pid).length === 0;
    if (await waitFor(gone, timeoutMs, 50)) return;
    for (const m of groupMembers(pid)) signal(m, 'SIGKILL');
    if (!(await waitFor(gone, 5_000, 50))) throw this.fail(`process group ${pid} did not go away`);
  }

  private async waitPortsClosed(timeoutMs: number): Promise<void> {
    const closed = async () => {
      for (const p of this.ports) if (await tcpOpen(p, '127.0.0.1', 200)) return false;
      return true;
    };
    if (!(await waitFor(closed, timeoutMs, 100))) throw this.fail(`ports ${this.ports.join(', ')} still open`);
  }

  /** The owner (postgres, mysql) must be able to traverse every parent of the run dir. */
  private checkReachable(owner: UserIds): void {
    let dir = dirname(fs.realpathSync(this.runDir));
    for (;;) {
      const st = fs.statSync(dir);
      const x = st.uid === owner.uid ? 0o100 : st.gid === owner.gid ? 0o010 : 0o001;
      if ((st.mode & x) === 0) {
        throw this.fail(
          `user ${this.spec.owner} cannot traverse ${dir} (mode ${(st.mode & 0o777).toString(8)}); ` +
            'set CDC_RUN_DIR to a directory it can reach, e.g. /var/tmp/cdc-run',
        );
      }
      const parent = dirname(dir);
      if (parent === dir) return;
      dir = parent;
    }
  }

  private rotateLog(): void {
    try {
      if (fs.statSync(this.logFile).size > MAX_LOG_BYTES) fs.renameSync(this.logFile, `${this.logFile}.1`);
    } catch {
      /* no log yet */
    }
  }
}

/** Build a Server from a per-kind spec. */
export function managedServer(spec: ServerSpec): Server {
  return new ManagedServer(spec);
}
