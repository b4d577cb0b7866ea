import { schemaFingerprint, type TableSchema } from '../schemas/table-schema.js';

const cache = new WeakMap<TableSchema, string>();

/**
 * `schemaFingerprint`, once per schema object: the codec hands every event of one table version
 * the same object, and the fingerprint is a canonical-JSON walk (too slow to repeat per row).
 */
export function fingerprint(s: TableSchema): string {
  let f = cache.get(s);
  if (f === undefined) {
    f = schemaFingerprint(s);
    cache.set(s, f);
  }
  return f;
}
