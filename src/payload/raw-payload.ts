/**
 * VDSM's raw payload, `{volId, file: {PATH: base64}}`, however it arrives (the `files`
 * param, or the `ovirt-vm:payload` metadata of a VM.create domain XML): the checks before
 * anything is built from it, each problem named at the caller's own field.
 */
import { META_DATA_PATH } from '../cloudinit/index.js';
import type { DriveTree } from '../cloudinit/types.js';
import { AgentError, type Problem } from '../errors.js';
import { buildTree, validateVolumeId } from '../iso/index.js';
import { DEFAULT_LABEL, treeInstanceId } from './build-drive.js';

/** Where the label and each file were given, as the caller wrote them. */
export interface RawFields {
  readonly volId: string;
  /** A file by its path, or (undefined) the file map as a whole. */
  readonly file: (path: string | undefined) => string;
}

/** Standard base64 with its padding, as VDSM and the engine write it; undefined when it is not. */
export function decodeBase64(b64: string): Uint8Array | undefined {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(b64)) return undefined;
  return new Uint8Array(Buffer.from(b64, 'base64'));
}

/**
 * What a raw payload must be: a label a volume can have, paths the drive can hold
 * (relative, no `..`, no NUL, within the ISO limits: the ISO layer's own rules), and for
 * a `config-2` volume the meta_data.json with a uuid that cloud-init needs, as for a
 * pre-built drive.
 */
export function rawPayloadProblems(files: DriveTree, volId: string | undefined, at: RawFields): Problem[] {
  const problems: Problem[] = [];
  try {
    if (volId !== undefined) validateVolumeId(volId);
  } catch (err) {
    if (!(err instanceof AgentError)) throw err;
    problems.push({ path: at.volId, message: 'must be 1 to 32 printable ASCII characters without trailing spaces' });
  }
  try {
    buildTree({ files });
  } catch (err) {
    if (!(err instanceof AgentError)) throw err;
    problems.push(...err.problems.map((q) => ({ path: fieldOf(q.path, at), message: q.message })));
  }
  if ((volId ?? DEFAULT_LABEL) === DEFAULT_LABEL && treeInstanceId(files) === undefined) {
    problems.push({ path: at.file(undefined), message: `a ${DEFAULT_LABEL} payload needs ${META_DATA_PATH} with a uuid (the instance-id): cloud-init would reject the drive` });
  }
  return problems;
}

/** The ISO layer names a file `files["PATH"]`; the caller named it otherwise. */
function fieldOf(isoPath: string, at: RawFields): string {
  const m = /^files(?:\[("(?:[^"\\]|\\.)*")\])?(.*)$/s.exec(isoPath);
  if (m === null) return isoPath;
  return at.file(m[1] === undefined ? undefined : (JSON.parse(m[1]) as string)) + (m[2] ?? '');
}
