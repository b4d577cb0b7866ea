import { parseAvro } from './long.js';
import { type CompatibilityLevel, type RegisteredSchema, type SchemaRegistryClient, SchemaRegistryError } from './registry.js';

/**
 * An in-process registry for unit tests of the codec's pure logic (the integration tests use the
 * real one, `infra/registry.ts`). Ids are global and shared by equal schema texts, like
 * Confluent's; BACKWARD is checked with avsc's schema resolution against the latest version.
 */
export function memoryRegistry(): SchemaRegistryClient & { requests: number } {
  const ids = new Map<string, number>();
  const texts = new Map<number, string>();
  const subjects = new Map<string, number[]>();
  const levels = new Map<string, CompatibilityLevel>();
  const notFound = (what: string) => new SchemaRegistryError(`${what} not found`, { status: 404, retriable: false });
  const backwardOk = (subject: string, schema: string): boolean => {
    const versions = subjects.get(subject) ?? [];
    const latest = versions.at(-1);
    if (latest === undefined) return true;
    const level = levels.get(subject) ?? 'BACKWARD';
    if (level === 'NONE') return true;
    try {
      parseAvro(schema).createResolver(parseAvro(texts.get(latest)!));
      return true;
    } catch {
      return false;
    }
  };
  const self = {
    url: 'memory:',
    requests: 0,
    async lookup(subject: string, schema: string): Promise<RegisteredSchema | null> {
      self.requests++;
      const id = ids.get(schema);
      const versions = subjects.get(subject) ?? [];
      const i = id === undefined ? -1 : versions.indexOf(id);
      return i < 0 ? null : { id: id!, version: i + 1, schema };
    },
    async latest(subject: string): Promise<RegisteredSchema | null> {
      self.requests++;
      const versions = subjects.get(subject) ?? [];
      const id = versions.at(-1);
      return id === undefined ? null : { id, version: versions.length, schema: texts.get(id)! };
    },
    async register(subject: string, schema: string): Promise<number> {
      self.requests++;
      const existing = await self.lookup(subject, schema);
      if (existing) return existing.id;
      if (!backwardOk(subject, schema)) throw new SchemaRegistryError('incompatible', { status: 409, errorCode: 409, retriable: false });
      let id = ids.get(schema);
      if (id === undefined) {
        id = ids.size + 1;
        ids.set(schema, id);
        texts.set(id, schema);
      }
      subjects.set(subject, [...(subjects.get(subject) ?? []), id]);
      return id;
    },
    async testCompatibility(subject: string, schema: string) {
      self.requests++;
      return { compatible: backwardOk(subject, schema), messages: [] };
    },
    async getCompatibility(subject: string) {
      self.requests++;
      return levels.get(subject) ?? null;
    },
    async globalCompatibility(): Promise<CompatibilityLevel> {
      return 'NONE';
    },
    async setCompatibility(subject: string, level: CompatibilityLevel) {
      self.requests++;
      levels.set(subject, level);
    },
    async schemaById(id: number) {
      self.requests++;
      const t = texts.get(id);
      if (t === undefined) throw notFound(`schema ${id}`);
      return t;
    },
    async versions(subject: string) {
      return (subjects.get(subject) ?? []).map((_, i) => i + 1);
    },
  };
  return self;
}
