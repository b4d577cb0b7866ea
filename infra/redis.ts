// Redis: use whatever answers PING on the port (e.g. the system redis-server on 6379);
// otherwise start our own (no persistence).
import * as net from 'node:net';
import { bin } from './env.js';
import { managedServer, type Server } from './managed.js';

export interface RedisOptions {
  name: string;
  port: number;
}

/** PING over a raw socket; true on "+PONG". */
export function redisPing(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host });
    let buf = '';
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('error', () => done(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
  });
}

export function redisServer(opts: RedisOptions): Server {
  return managedServer({
    name: opts.name,
    kind: 'redis',
    port: opts.port,
    url: `redis://127.0.0.1:${opts.port}`,
    startTimeoutMs: 30_000,
    command(ctx) {
      return {
        cmd: bin.redisServer,
        args: [
          '--port', String(opts.port),
          '--bind', '127.0.0.1',
          '--dir', ctx.runDir,
          '--save', '',
          '--appendonly', 'no',
          '--daemonize', 'no', // we detach it ourselves, keeping its pid
          '--logfile', '', // stdout = the log file
        ],
      };
    },
    probe: () => redisPing(opts.port),
    acceptExternal: () => redisPing(opts.port),
  });
}
