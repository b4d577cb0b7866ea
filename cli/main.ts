import { Command, CommanderError } from 'commander';
import { registerParked } from './commands/parked.js';
import { registerRun } from './commands/run.js';
import { registerSlots } from './commands/slots.js';
import { registerSnapshot } from './commands/snapshot.js';
import { registerStatus } from './commands/status.js';
import { registerValidate } from './commands/validate.js';
import { registerVerify } from './commands/verify.js';
import { EXIT, reportError } from './exit.js';

export function buildProgram(): Command {
  const program = new Command('cdc')
    .description('change-data-capture replication: PostgreSQL / MySQL / MariaDB -> Kafka -> replicas')
    .version('0.1.0')
    .exitOverride()
    .showHelpAfterError();
  registerValidate(program);
  registerRun(program);
  registerVerify(program);
  registerSnapshot(program);
  registerStatus(program);
  registerSlots(program);
  registerParked(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.config;
    return reportError(err);
  }
}
