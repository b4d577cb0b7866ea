import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

async function cdc(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('node', ['bin/cdc.js', ...args], { env: { ...process.env, PGPASS: 'x' } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('cdc validate', () => {
  it.each([
    ['missing-field', 'kafka: required'],
    ['wrong-type', 'kafka.partitions: expected number, got string'],
    ['bad-url', 'sinks[0].url: expected postgres:// or mysql:// URL'],
    ['unknown-key', 'sources[0].postgres.slott: unknown key'],
  ])('%s: one clear line and exit code 2', async (fixture, line) => {
    const r = await cdc('validate', '-c', `test/fixtures/config/${fixture}.yaml`);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(line);
    expect(r.stderr).not.toMatch(/\bat .*\.ts:\d+/); // no stack trace
  }, 30_000);

  it('accepts the example configs', async () => {
    for (const f of ['examples/pipeline.yaml']) {
      const r = await cdc('validate', '-c', f);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(': ok');
    }
  }, 30_000);

  it('exits 2 on an unknown command', async () => {
    const r = await cdc('bogus');
    expect(r.code).toBe(2);
  }, 30_000);
});
