// The MySQL/MariaDB source connector's public surface; everything else in this folder is internal.
export { createMysqlSource, CONNECTOR_VERSION } from './source.js';
export type { FirstStartInfo, MysqlSourceHooks } from './options.js';
