import {
  type CompatibilityLevel,
  type RegisteredSchema,
  type SchemaRegistryClient,
  SchemaRegistryError,
} from '../schemas/avro/registry.js';
import { redactUrl } from '../util/redact.js';
import { type RetryOptions, retry } from '../util/retry.js';

export interface SchemaRegistryOptions {
  /**
   * Base URL of the Confluent-compatible API: `http://host:8081` (Confluent, Karapace, Redpanda)
   * or `http://host:8080/apis/ccompat/v7` (Apicurio). User info in the URL becomes basic auth.
   */
  url: string;
  /** Per-request timeout. @defaultValue 10000 */
  timeoutMs?: number;
  /** Retry of network errors and 5xx answers (util/retry). @defaultValue retry for ~1 minute */
  retry?: Partial<RetryOptions>;
}

const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';

/**
 * The Confluent Schema Registry REST API over plain `fetch`. Not `@kafkajs/confluent-schema-registry`
 * because the codec needs what that client does not expose or does differently: the
 * compatibility-test endpoint, setting a subject's level *before* its first version, lookups
 * that return null instead of throwing, and errors mapped to our retriable / permanent split
 * (its own `decode` is used by our tests as the independent decoder). Works against any
 * Confluent-compatible registry: only endpoints of the v7 API are used.
 */
export function httpSchemaRegistry(o: SchemaRegistryOptions): SchemaRegistryClient {
  const parsed = new URL(o.url);
  const auth = parsed.username ? `Basic ${Buffer.from(`${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`).toString('base64')}` : undefined;
  parsed.username = '';
  parsed.password = '';
  const base = parsed.toString().replace(/\/+$/, '');
  const shown = redactUrl(o.url);
  const timeoutMs = o.timeoutMs ?? 10_000;
  const retryOpts: Partial<RetryOptions> = { initialDelayMs: 200, maxDelayMs: 5_000, maxAttempts: 15, ...o.retry };
  const enc = encodeURIComponent;

  async function once(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, {
        method,
        headers: { accept: `${CONTENT_TYPE}, application/json`, ...(body === undefined ? {} : { 'content-type': CONTENT_TYPE }), ...(auth ? { authorization: auth } : {}) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new SchemaRegistryError(`schema registry ${shown} unreachable (${method} ${path}): ${(err as Error).message}`, { status: 0, retriable: true, cause: err });
    }
    const text = await res.text();
    let json: unknown = null;
    try {
      json = text.length > 0 ? JSON.parse(text) : null;
    } catch {
      json = { message: text.slice(0, 500) };
    }
    if (res.ok) return { status: res.status, json };
    const e = (json ?? {}) as { message?: string; error_code?: number };
    throw new SchemaRegistryError(`schema registry ${shown}: ${method} ${path} -> ${res.status} ${e.message ?? ''}`.trim(), {
      status: res.status,
      ...(typeof e.error_code === 'number' ? { errorCode: e.error_code } : {}),
      // 408 / 429 / 5xx are the registry being busy or restarting; 4xx are answers.
      retriable: res.status >= 500 || res.status === 408 || res.status === 429,
    });
  }

  const call = (method: string, path: string, body?: unknown) => retry(() => once(method, path, body), retryOpts);

  /** 404 -> null, for lookups of things that may not exist yet. */
  async function maybe<T>(p: Promise<{ json: unknown }>): Promise<T | null> {
    try {
      return (await p).json as T;
    } catch (err) {
      if (err instanceof SchemaRegistryError && err.status === 404) return null;
      throw err;
    }
  }

  return {
    url: shown,
    async lookup(subject, schema) {
      const r = await maybe<RegisteredSchema>(call('POST', `/subjects/${enc(subject)}`, { schema }));
      return r === null ? null : { id: r.id, version: r.version, schema: r.schema };
    },
    async latest(subject) {
      const r = await maybe<RegisteredSchema>(call('GET', `/subjects/${enc(subject)}/versions/latest`));
      return r === null ? null : { id: r.id, version: r.version, schema: r.schema };
    },
    async register(subject, schema) {
      const { json } = await call('POST', `/subjects/${enc(subject)}/versions`, { schema });
      return (json as { id: number }).id;
    },
    async testCompatibility(subject, schema) {
      const r = await maybe<{ is_compatible: boolean; messages?: string[] }>(
        call('POST', `/compatibility/subjects/${enc(subject)}/versions/latest?verbose=true`, { schema }),
      );
      // No version yet: anything is compatible.
      return r === null ? { compatible: true, messages: [] } : { compatible: r.is_compatible, messages: r.messages ?? [] };
    },
    async getCompatibility(subject) {
      const r = await maybe<{ compatibilityLevel?: string; compatibility?: string }>(call('GET', `/config/${enc(subject)}`));
      const level = r?.compatibilityLevel ?? r?.compatibility;
      return (level ?? null) as CompatibilityLevel | null;
    },
    async globalCompatibility() {
      const { json } = await call('GET', '/config');
      const r = json as { compatibilityLevel?: string; compatibility?: string };
      return (r.compatibilityLevel ?? r.compatibility ?? 'BACKWARD') as CompatibilityLevel;
    },
    async setCompatibility(subject, level) {
      await call('PUT', `/config/${enc(subject)}`, { compatibility: level });
    },
    async schemaById(id) {
      const { json } = await call('GET', `/schemas/ids/${id}`);
      return (json as { schema: string }).schema;
    },
    async versions(subject) {
      return (await maybe<number[]>(call('GET', `/subjects/${enc(subject)}/versions`))) ?? [];
    },
  };
}
