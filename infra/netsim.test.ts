import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type Link, regionalKafkaProperties, tcpLink } from './netsim.js';

/** An echo server on an ephemeral port. */
async function echoServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Connects, sends `messages` one per 5 ms, resolves with everything echoed once `bytes` arrived. */
function roundTrip(port: number, messages: string[], bytes: number, timeoutMs = 5000): Promise<{ text: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const c = net.connect({ port, host: '127.0.0.1' });
    let text = '';
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error(`timeout with ${JSON.stringify(text)}`));
    }, timeoutMs);
    c.on('data', (d) => {
      text += d.toString();
      if (text.length >= bytes) {
        clearTimeout(timer);
        c.destroy();
        resolve({ text, ms: Date.now() - t0 });
      }
    });
    c.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    messages.forEach((m, i) => setTimeout(() => c.write(m), i * 5));
  });
}

describe('netsim tcpLink', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });

  async function setup(latencyMs = 0, jitterMs = 0): Promise<Link> {
    const echo = await echoServer();
    const link = await tcpLink({ name: 'test', listenPort: await freePort(), targetPort: echo.port, latencyMs, jitterMs });
    cleanups.push(() => link.close(), echo.close);
    return link;
  }

  it('forwards bytes unchanged and in order under jitter', async () => {
    const link = await setup(5, 20);
    const msgs = Array.from({ length: 40 }, (_, i) => `<${i}>`);
    const r = await roundTrip(link.port, msgs, msgs.join('').length);
    expect(r.text).toBe(msgs.join(''));
  });

  it('adds the latency in both directions', async () => {
    const link = await setup(60);
    const r = await roundTrip(link.port, ['ping'], 4);
    // Two one-way delays; a lower bound only (the machine may be slower, never faster).
    expect(r.ms).toBeGreaterThanOrEqual(110);
  });

  it('holds traffic while partitioned and delivers it after the heal', async () => {
    const link = await setup();
    link.partition('blackhole');
    const p = roundTrip(link.port, ['held', '-bytes'], 10, 5000);
    await new Promise((r) => setTimeout(r, 300));
    expect(link.stats().bytesDown).toBe(0);
    link.heal();
    expect((await p).text).toBe('held-bytes');
  });

  it('reset partitions cut connections and refuse new ones until healed', async () => {
    const link = await setup();
    link.partition('reset');
    await expect(roundTrip(link.port, ['x'], 1, 1000)).rejects.toThrow();
    link.heal();
    expect((await roundTrip(link.port, ['back'], 4)).text).toBe('back');
  });
});

describe('regionalKafkaProperties', () => {
  it('advertises each region at its proxy', () => {
    const p = regionalKafkaProperties({ port: 9092, controllerPort: 9093, regions: [{ name: 'eu', listenerPort: 9101, proxyPort: 9201 }] });
    expect(p.listeners).toBe('PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093,R_EU://127.0.0.1:9101');
    expect(p['advertised.listeners']).toBe('PLAINTEXT://127.0.0.1:9092,R_EU://127.0.0.1:9201');
    expect(p['listener.security.protocol.map']).toContain('R_EU:PLAINTEXT');
  });
});
