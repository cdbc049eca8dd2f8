#!/usr/bin/env node
// Runs the built CLI when there is one (installed package, or `pnpm build` in the checkout); else,
// in the checkout, the TypeScript sources through tsx. tsx has to be loaded with --import at start
// (a loader registered from inside a running module comes too late for ESM), so that case starts
// one child node with the flags and passes signals and the exit status through.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const built = fileURLToPath(new URL('../dist/main.js', import.meta.url));
if (existsSync(built)) {
  await import(pathToFileURL(built).href);
} else {
  let tsx;
  try {
    tsx = import.meta.resolve('tsx');
  } catch {
    process.stderr.write('zimage: no build found (dist/main.js) and tsx is not installed; run `pnpm build` in the checkout\n');
    process.exit(1);
  }
  const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
  const child = spawn(process.execPath, [...process.execArgv, '--conditions=zimage-source', '--import', tsx, main, ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal); // die of the same signal, as the child did
      process.kill(process.pid, signal);
    }
    else process.exit(code ?? 1);
  });
}
