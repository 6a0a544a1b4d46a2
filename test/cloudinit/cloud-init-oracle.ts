/**
 * Asks Debian's cloud-init what it makes of our drives: test/cloudinit/cloudinit_check.py
 * run once for a whole batch of trees (a Python start costs ~0.5 s on our hosts).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DriveTree } from '../../src/cloudinit/types.js';
import { DEBIAN_PYTHON, run } from '../helpers/tools.js';

/** Source tree path: tests run from dist/, the script is not compiled. */
export const CHECK_SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/cloudinit/cloudinit_check.py');

export interface SchemaReport {
  readonly errors: readonly string[];
  readonly warnings: readonly string[];
}

export interface NetConfigEntry {
  readonly type: string;
  readonly name?: string;
  readonly mac_address?: string | null;
  readonly address?: string;
  readonly subnets?: readonly Record<string, unknown>[];
  readonly [key: string]: unknown;
}

export interface CloudInitView {
  readonly error?: string;
  /** What cloud-init logged at WARNING or above while reading the drive. */
  readonly log_warnings: readonly string[];
  readonly instance_id: string;
  readonly local_hostname: string | null;
  readonly public_keys: readonly string[];
  readonly mime_parts: readonly { type: string; text: string }[];
  readonly schema: readonly SchemaReport[];
  readonly cloud_config: Record<string, unknown>;
  readonly users: { users: readonly string[]; default_user: string | null };
  readonly network?: { version: 1; config: readonly NetConfigEntry[] };
  readonly eni?: { version: 1; config: readonly NetConfigEntry[] };
  /** `cloud-init devel net-convert` output for Debian: {netplan|eni: {path: text}}. */
  readonly rendered?: { readonly netplan: Readonly<Record<string, string>>; readonly eni: Readonly<Record<string, string>> };
}

export function writeTree(tree: DriveTree, dir: string): void {
  for (const [path, bytes] of tree) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), bytes);
  }
}

/** Each tree in a directory of its own under `root`, as the Python checkers take them. */
export function writeDrives(root: string, drives: readonly { tree: DriveTree; macs?: Readonly<Record<string, string>> }[]): { dir: string; macs: Readonly<Record<string, string>> }[] {
  return drives.map((d, i) => {
    const dir = join(root, `drive-${String(i)}`);
    writeTree(d.tree, dir);
    return { dir, macs: d.macs ?? {} };
  });
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** One cloud-init view per tree, in order; `macs` maps MAC -> guest interface name. */
export async function readWithCloudInit(
  drives: readonly { tree: DriveTree; macs?: Readonly<Record<string, string>> }[],
): Promise<CloudInitView[]> {
  const root = tempDir('cloudinit-check-');
  try {
    const request = writeDrives(root, drives);
    const scratch = join(root, 'scratch');
    mkdirSync(scratch);
    const out = await run(DEBIAN_PYTHON, [CHECK_SCRIPT, scratch], { input: JSON.stringify(request) });
    return JSON.parse(out) as CloudInitView[];
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
