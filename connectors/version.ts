/** `source.version` of the events this build writes (both connectors; keep in step with package.json, checked by a unit test). */
export const CONNECTOR_VERSION = '0.1.0';
