/**
 * Reads our drives with the cloud-init of several Debian releases (unpacked by
 * tools/cloud-init-releases, never installed): test/cloudinit/cloudinit_generations.py
 * once per release for the whole batch of trees.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DriveTree } from '../../src/cloudinit/types.js';
import { DEBIAN_PYTHON, run } from '../helpers/tools.js';
import { tempDir, writeDrives, type CloudInitView } from './cloud-init-oracle.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SCRIPT = join(ROOT, 'test/cloudinit/cloudinit_generations.py');
const RELEASES_TOOL = join(ROOT, 'tools/cloud-init-releases');

export const RENDERERS = ['eni', 'netplan', 'networkd', 'sysconfig', 'network-manager'] as const;
export type RendererName = (typeof RENDERERS)[number];

export interface Release {
  readonly suite: string;
  /** The Debian package version, e.g. 20.4.1-2+deb11u1. */
  readonly debVersion: string;
  readonly dir: string;
}

export interface ReleaseFacts {
  readonly version: string;
  readonly module: string;
  readonly output_kinds: readonly string[];
  /** "modules": before 22.2 only the keys of modules that declared a schema are validated. */
  readonly schema_scope: { readonly kind: 'full' | 'modules'; readonly keys: readonly string[] };
  readonly default_user: string | null;
}

export type Rendered =
  | { readonly files: Readonly<Record<string, string>>; readonly log_warnings: readonly string[] }
  | { readonly lacking: string }
  | { readonly error: string; readonly log_warnings: readonly string[] };

export interface Applied {
  readonly errors?: readonly string[];
  readonly created: readonly Record<string, unknown>[];
  readonly passwords: readonly { user: string; hashed: boolean; value: string }[];
  readonly expired: readonly string[];
  readonly ssh_pwauth: readonly unknown[];
  readonly commands: readonly (readonly string[])[];
  readonly command_log: readonly { readonly args: readonly string[]; readonly users: readonly string[] }[];
  readonly log_warnings: readonly string[];
}

/** What a release makes of vendor_data.json (cloudinit_generations.py, vendor()). */
export interface VendorView {
  readonly raw_type: string;
  readonly schema?: { errors: readonly string[]; warnings: readonly string[] };
  readonly cloud_config?: Record<string, unknown>;
  readonly merged_bootcmd?: unknown;
  readonly shellified?: string;
  readonly log_warnings: readonly string[];
}

export interface GenerationView extends Omit<CloudInitView, 'rendered'> {
  /** Which datasource read the tree: NoCloud for one with meta-data at its root. */
  readonly datasource?: 'ConfigDrive' | 'NoCloud';
  /** NoCloud's dsmode as its reader decided it. */
  readonly dsmode?: string;
  readonly applied: Applied;
  readonly vendor?: VendorView;
  readonly network_schema?: { available: boolean; errors: readonly string[]; warnings: readonly string[]; log_warnings: readonly string[] };
  readonly rendered?: Readonly<Record<RendererName, Rendered>>;
}

/** The releases to read with, fetched into the cache unless there already. */
export async function cloudInitReleases(): Promise<Release[]> {
  const out = await run('/bin/bash', [RELEASES_TOOL], { timeout: 600_000 });
  return out
    .trim()
    .split('\n')
    .map((line) => {
      const [suite, debVersion, dir] = line.split('\t');
      if (suite === undefined || debVersion === undefined || dir === undefined) throw new Error(`tools/cloud-init-releases printed '${line}'`);
      return { suite, debVersion, dir };
    });
}

/** One view per tree, in order, as this release's cloud-init sees it. */
export async function readWithRelease(
  release: Release,
  drives: readonly { tree: DriveTree; macs?: Readonly<Record<string, string>> }[],
): Promise<{ release: ReleaseFacts; results: GenerationView[] }> {
  const root = tempDir('cloudinit-generations-');
  try {
    const request = writeDrives(root, drives);
    const scratch = join(root, 'scratch');
    mkdirSync(scratch);
    const out = await run(DEBIAN_PYTHON, [SCRIPT, scratch, release.dir], {
      input: JSON.stringify(request),
      env: { PYTHONPATH: join(release.dir, 'usr/lib/python3/dist-packages') },
    });
    return JSON.parse(out) as { release: ReleaseFacts; results: GenerationView[] };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
