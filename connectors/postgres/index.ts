// The PostgreSQL source connector's public surface; everything else in this folder is internal.
export { createPostgresSource } from './source.js';
export { CONNECTOR_VERSION } from '../version.js';
export type { PostgresSourceHooks, SlotCreatedInfo } from './options.js';
