// A userspace link simulator: TCP proxies with latency, jitter and a partition switch.
//
// This machine's kernel has network namespaces but no `sch_netem` qdisc (no `tc netem`), so a
// region's network is simulated in userspace: every connection a region makes to a shared
// service (Kafka) goes through that region's proxy, which delays each chunk by latency ± jitter
// (keeping byte order) and, when partitioned, stops forwarding in both directions: bytes already
// in flight are held (TCP would retransmit them after the partition), new connections are
// accepted but not connected upstream until the link heals. `reset` partitions instead cut every
// connection at once (a crashed middlebox / RST storm).
//
// Kafka learns broker addresses from metadata, so a proxy in front of a broker must be what the
// broker advertises to that region: `regionalKafka()` builds broker properties with one listener
// per region whose advertised address is the region's proxy (see test/mesh/servers.ts).
import * as net from 'node:net';

export interface LinkOptions {
  /** Name for logs and errors, e.g. `ap->kafka`. */
  name: string;
  /** Port the proxy listens on (127.0.0.1). */
  listenPort: number;
  targetPort: number;
  targetHost?: string;
  /** One-way delay added to every chunk, both directions. @defaultValue 0 */
  latencyMs?: number;
  /** Uniform extra delay 0..jitterMs per chunk (order is kept). @defaultValue 0 */
  jitterMs?: number;
}

export interface LinkStats {
  connections: number;
  open: number;
  bytesUp: number;
  bytesDown: number;
  /** Chunks held while partitioned. */
  held: number;
}

export interface Link {
  readonly name: string;
  readonly port: number;
  readonly partitioned: boolean;
  setLatency(latencyMs: number, jitterMs?: number): void;
  /**
   * blackhole: stop forwarding (held bytes flow again on heal; new connections wait);
   * reset: destroy every connection and refuse new ones until heal.
   */
  partition(mode?: 'blackhole' | 'reset'): void;
  heal(): void;
  stats(): LinkStats;
  close(): Promise<void>;
}

/** One direction of a proxied connection: ordered, delayed, pausable. */
class Pipe {
  private queue: { chunk: Buffer; due: number }[] = [];
  private lastDue = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly to: net.Socket,
    private readonly link: LinkImpl,
    private readonly count: (n: number) => void,
  ) {}

  push(chunk: Buffer): void {
    if (this.link.partitioned) this.link.held++;
    const delay = this.link.latencyMs + Math.random() * this.link.jitterMs;
    if (delay <= 0 && this.queue.length === 0 && !this.link.partitioned) {
      this.write(chunk);
      return;
    }
    // Never before the previous chunk: jitter must not reorder a byte stream.
    this.lastDue = Math.max(this.lastDue, Date.now() + delay);
    this.queue.push({ chunk, due: this.lastDue });
    this.schedule();
  }

  private write(chunk: Buffer): void {
    if (this.to.destroyed) return;
    this.count(chunk.length);
    this.to.write(chunk);
  }

  private schedule(): void {
    if (this.timer !== null || this.queue.length === 0 || this.link.partitioned) return;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.flush();
      },
      Math.max(0, this.queue[0]!.due - Date.now()),
    );
  }

  /** Sends the chunks that are due, then waits for the next. */
  private flush(): void {
    if (this.link.partitioned) return;
    const now = Date.now();
    let i = 0;
    while (i < this.queue.length && this.queue[i]!.due <= now) this.write(this.queue[i++]!.chunk);
    this.queue.splice(0, i);
    this.schedule();
  }

  /** After a partition: what was held goes out one latency from now, in order. */
  resume(): void {
    const at = Date.now() + this.link.latencyMs;
    for (const q of this.queue) q.due = Math.max(q.due, at);
    this.lastDue = Math.max(this.lastDue, at);
    this.schedule();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.queue = [];
  }
}

class LinkImpl implements Link {
  readonly name: string;
  readonly port: number;
  latencyMs: number;
  jitterMs: number;
  partitioned = false;
  held = 0;
  private mode: 'blackhole' | 'reset' = 'blackhole';
  private readonly conns = new Set<{ client: net.Socket; upstream: net.Socket | null; pipes: Pipe[]; connect: () => void }>();
  private readonly s: LinkStats = { connections: 0, open: 0, bytesUp: 0, bytesDown: 0, held: 0 };

  constructor(
    private readonly o: LinkOptions,
    private readonly server: net.Server,
  ) {
    this.name = o.name;
    this.port = o.listenPort;
    this.latencyMs = o.latencyMs ?? 0;
    this.jitterMs = o.jitterMs ?? 0;
    server.on('connection', (client) => this.accept(client));
  }

  private accept(client: net.Socket): void {
    if (this.partitioned && this.mode === 'reset') {
      client.destroy();
      return;
    }
    this.s.connections++;
    this.s.open++;
    client.setNoDelay(true);
    const conn = {
      client,
      upstream: null as net.Socket | null,
      pipes: [] as Pipe[],
      connect: () => {
        if (conn.upstream || client.destroyed) return;
        const upstream = net.connect({ host: this.o.targetHost ?? '127.0.0.1', port: this.o.targetPort });
        upstream.setNoDelay(true);
        conn.upstream = upstream;
        const up = new Pipe(upstream, this, (n) => (this.s.bytesUp += n));
        const down = new Pipe(client, this, (n) => (this.s.bytesDown += n));
        conn.pipes = [up, down];
        for (const c of pending) up.push(c);
        pending.length = 0;
        client.removeListener('data', early);
        client.on('data', (d: Buffer) => up.push(d));
        upstream.on('data', (d: Buffer) => down.push(d));
        const end = () => close();
        upstream.on('error', end);
        upstream.on('close', end);
      },
    };
    // Bytes the client sends before the upstream connection exists.
    const pending: Buffer[] = [];
    const early = (d: Buffer) => pending.push(d);
    client.on('data', early);
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      this.s.open--;
      for (const p of conn.pipes) p.stop();
      client.destroy();
      conn.upstream?.destroy();
      this.conns.delete(conn);
    };
    client.on('error', close);
    client.on('close', close);
    this.conns.add(conn);
    if (!this.partitioned) conn.connect();
  }

  setLatency(latencyMs: number, jitterMs = 0): void {
    this.latencyMs = latencyMs;
    this.jitterMs = jitterMs;
  }

  partition(mode: 'blackhole' | 'reset' = 'blackhole'): void {
    this.partitioned = true;
    this.mode = mode;
    if (mode === 'reset') for (const c of [...this.conns]) (c.client.destroy(), c.upstream?.destroy());
  }

  heal(): void {
    if (!this.partitioned) return;
    this.partitioned = false;
    for (const c of [...this.conns]) {
      if (!c.upstream) c.connect();
      else for (const p of c.pipes) p.resume();
    }
  }

  stats(): LinkStats {
    return { ...this.s, held: this.held };
  }

  async close(): Promise<void> {
    for (const c of [...this.conns]) (c.client.destroy(), c.upstream?.destroy());
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** Starts a proxy on 127.0.0.1:`listenPort` forwarding to `targetHost:targetPort`. */
export async function tcpLink(o: LinkOptions): Promise<Link> {
  const server = net.createServer({ noDelay: true });
  const link = new LinkImpl(o, server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.listenPort, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return link;
}

export interface RegionSpec {
  /** Region name: upper-cased, it names the broker listener (letters, digits, _). */
  name: string;
  /** Port of the region's broker listener (the proxy forwards there). */
  listenerPort: number;
  /** Port of the region's proxy: what the broker advertises to the region. */
  proxyPort: number;
}

/**
 * Broker properties for one Kafka node with a listener per region, each advertised at the
 * region's proxy, plus the ordinary PLAINTEXT listener (inter-broker traffic and test tooling).
 */
export function regionalKafkaProperties(o: { port: number; controllerPort: number; regions: RegionSpec[] }): Record<string, string> {
  const host = '127.0.0.1';
  const names = o.regions.map((r) => {
    const n = r.name.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
    if (n === 'PLAINTEXT' || n === 'CONTROLLER') throw new Error(`region name ${r.name} collides with a listener name`);
    return { ...r, listener: `R_${n}` };
  });
  return {
    listeners: [`PLAINTEXT://${host}:${o.port}`, `CONTROLLER://${host}:${o.controllerPort}`, ...names.map((r) => `${r.listener}://${host}:${r.listenerPort}`)].join(','),
    'advertised.listeners': [`PLAINTEXT://${host}:${o.port}`, ...names.map((r) => `${r.listener}://${host}:${r.proxyPort}`)].join(','),
    'listener.security.protocol.map': ['PLAINTEXT:PLAINTEXT', 'CONTROLLER:PLAINTEXT', ...names.map((r) => `${r.listener}:PLAINTEXT`)].join(','),
  };
}
