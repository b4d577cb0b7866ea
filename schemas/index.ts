export * from './column-types.js';
export * from './table-schema.js';
export * from './position.js';
export * from './change-event.js';
export * from './errors.js';
export * from './codec/types.js';
export { jsonCodec } from './codec/json.js';
