// Integration tests run against the real servers infra/ starts; make sure they are up (idempotent:
// running servers are left alone, so `npm test` after `infra/up` costs nothing here).
import { startDefaults } from '../infra/servers.js';

export default async function setup(): Promise<void> {
  await startDefaults();
}
