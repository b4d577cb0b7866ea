// The PostgreSQL source connector's public surface; everything else in this folder is internal.
export { createPostgresSource, CONNECTOR_VERSION } from './source.js';
export type { PostgresSourceHooks, SlotCreatedInfo } from './options.js';
