/**
 * Runs what each cloud-init release's init stage does with our drives' user data:
 * test/cloudinit/cloudinit_userdata.py once per release for the whole batch of trees.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DriveTree } from '../../src/cloudinit/types.js';
import { DEBIAN_PYTHON, run } from '../helpers/tools.js';
import type { Release } from './cloud-init-generations.js';
import { tempDir, writeDrives, type SchemaReport } from './cloud-init-oracle.js';

const SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/cloudinit/cloudinit_userdata.py');

export interface ConsumedPart {
  readonly type: string;
  readonly filename: string | null;
  readonly merge_type: string | null;
  readonly payload: string;
}

export interface ParsedKey {
  readonly line: string;
  readonly keytype: string | null;
  readonly options: string | null;
  readonly comment: string | null;
  readonly written: string;
}

/** What one release's init stage made of a drive's user data (cloudinit_userdata.py, consume()). */
export interface Consumed {
  readonly error?: string;
  /** UserDataProcessor raised: the guest would apply no user data at all. */
  readonly ud_error?: string;
  readonly public_keys?: readonly string[];
  readonly parts?: readonly ConsumedPart[];
  readonly cloud_config_text?: string;
  /** The merged cloud-config the modules would read (instances/<id>/cloud-config.txt). */
  readonly cloud_config?: Record<string, unknown>;
  readonly schema?: SchemaReport | null;
  /** Scripts cloud-init would run at the end of the first boot, by file name. */
  readonly scripts?: Readonly<Record<string, string>>;
  /** Scripts run per boot, instance or once (scripts/per-*). */
  readonly scripts_by_frequency?: Readonly<Record<string, string>>;
  /** Boothooks cloud-init ran (recorded, not run), with their content. */
  readonly boothooks?: readonly { file: string; content: string; instance_id: string | null }[];
  readonly keys?: readonly ParsedKey[];
  readonly log_warnings: readonly string[];
}

export async function consumeWithRelease(release: Release, trees: readonly DriveTree[]): Promise<{ version: string; results: Consumed[] }> {
  const root = tempDir('cloudinit-userdata-');
  try {
    const request = writeDrives(root, trees.map((tree) => ({ tree })));
    const scratch = join(root, 'scratch');
    mkdirSync(scratch);
    const out = await run(DEBIAN_PYTHON, [SCRIPT, scratch, release.dir], {
      input: JSON.stringify(request),
      env: { PYTHONPATH: join(release.dir, 'usr/lib/python3/dist-packages') },
    });
    return JSON.parse(out) as { version: string; results: Consumed[] };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
