import { CdcError } from '../errors.js';

/** Subject-level compatibility of the Confluent Schema Registry API. */
export type CompatibilityLevel = 'NONE' | 'BACKWARD' | 'BACKWARD_TRANSITIVE' | 'FORWARD' | 'FORWARD_TRANSITIVE' | 'FULL' | 'FULL_TRANSITIVE';

export interface RegisteredSchema {
  id: number;
  version: number;
  /** Avro schema JSON text as the registry returns it. */
  schema: string;
}

/**
 * What the Avro codec needs from a schema registry: the Confluent Schema Registry REST API
 * (Confluent, Apicurio's `/apis/ccompat/v7`, Karapace, Redpanda). The HTTP implementation
 * lives in `pipeline/schema-registry.ts` (retries, errors) and is injected, so `schemas/`
 * stays free of I/O. Every method throws {@link SchemaRegistryError} on an HTTP error, with
 * `retriable` true for network failures and 5xx answers.
 */
export interface SchemaRegistryClient {
  /** Base URL, for messages. */
  readonly url: string;
  /** The version of `subject` whose schema is exactly `schema`, or null (unknown subject or schema). */
  lookup(subject: string, schema: string): Promise<RegisteredSchema | null>;
  /** The subject's latest version, or null when the subject has none. */
  latest(subject: string): Promise<RegisteredSchema | null>;
  /** Registers `schema` under `subject` (the existing id when it is already a version); 409 when incompatible. */
  register(subject: string, schema: string): Promise<number>;
  /** Would `schema` be accepted as the subject's next version under its compatibility level? */
  testCompatibility(subject: string, schema: string): Promise<{ compatible: boolean; messages: string[] }>;
  /** The subject's own compatibility level, or null when it has none (the global one applies). */
  getCompatibility(subject: string): Promise<CompatibilityLevel | null>;
  /** The registry-wide default compatibility level. */
  globalCompatibility(): Promise<CompatibilityLevel>;
  setCompatibility(subject: string, level: CompatibilityLevel): Promise<void>;
  /** Schema text by global id; throws (status 404) for an unknown id. */
  schemaById(id: number): Promise<string>;
  /** Version numbers of a subject (empty when unknown). */
  versions(subject: string): Promise<number[]>;
}

/** An HTTP error from the registry. `errorCode` is the Confluent `error_code` (e.g. 40401, 409). */
export class SchemaRegistryError extends CdcError {
  readonly status: number;
  readonly errorCode: number | undefined;
  constructor(message: string, opts: { status: number; errorCode?: number; retriable: boolean; cause?: unknown }) {
    super(message, { retriable: opts.retriable, code: 'SCHEMA_REGISTRY', cause: opts.cause });
    this.name = 'SchemaRegistryError';
    this.status = opts.status;
    this.errorCode = opts.errorCode;
  }
}
