/**
 * Access to the independent real tools the tests check our output with. They are
 * installed by tools/setup-host; a missing one is a failed test, never a skip, so that
 * CI cannot go green without running the real checks.
 */
import { execa, type Options } from 'execa';
import { accessSync, constants } from 'node:fs';

/** Debian's python3 (not a pyenv one): it is the one that sees python3-pycdlib and cloud-init. */
export const DEBIAN_PYTHON = '/usr/bin/python3';

export function requireTool(path: string): string {
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(`${path} is missing: run 'bash tools/setup-host' as root first`);
  }
  return path;
}

/** Runs a tool and returns stdout; a non-zero exit fails with the tool's stderr. */
export async function run(file: string, args: readonly string[], options: Options = {}): Promise<string> {
  const result = await execa(requireTool(file), args, { reject: false, stripFinalNewline: false, encoding: 'utf8', ...options });
  if (result.exitCode !== 0) {
    throw new Error(`${file} ${args.join(' ')} exited ${String(result.exitCode)}: ${String(result.stderr)}`);
  }
  return String(result.stdout);
}
