// The MySQL/MariaDB source connector's public surface; everything else in this folder is internal.
export { createMysqlSource } from './source.js';
export { CONNECTOR_VERSION } from '../version.js';
export type { FirstStartInfo, MysqlSourceHooks } from './options.js';
