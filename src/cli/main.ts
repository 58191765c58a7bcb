import { Command, CommanderError } from 'commander';
import { registerRulesCommands } from './rules.js';
import { registerServerCommands } from './server.js';
import { registerClientCommands } from './client.js';
import { registerDeployCommands } from './deploy.js';
import { registerLogsCommands } from './logs.js';
import { registerTokenCommands } from './tokens.js';

const program = new Command()
  .name('slipway')
  .description('Build-and-release service for teams that ship Docker images')
  .showHelpAfterError()
  .exitOverride();

registerRulesCommands(program);
registerServerCommands(program);
registerClientCommands(program);
registerDeployCommands(program);
registerLogsCommands(program);
registerTokenCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // commander signals --help/--version with exit code 0 and usage errors with 1; usage errors are 2 here.
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  // Anything else is a failed operation: say what went wrong instead of a bare exit code.
  process.stderr.write(`slipway: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
