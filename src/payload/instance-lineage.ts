/**
 * Which instance a domain's next drive is: its instance-id, generation and why.
 *
 * cloud-init runs its per-instance modules (users, passwords, keys, network) when the
 * drive's instance-id differs from the one it last ran with, and keeps per-instance
 * state under that id for good. So the rule is:
 *
 *  - never the bare domain UUID: QEMU shows it as the SMBIOS system UUID, and
 *    cloud-init's ConfigDrive then trusts its cached instance on every boot without
 *    reading any drive (check_instance_id), so no later drive could ever reach the guest;
 *  - `<uuid>-g<N>`, N counting the instances the agent gave the domain: unchanged while
 *    the settings are unchanged (a rebuild with the same id gives the same bytes, which
 *    is how "unchanged" is decided, without keeping any digest of the settings), N+1
 *    when they change or the caller asks to re-initialize. A counter rather than a
 *    digest of the settings: going back to earlier settings must be a new instance too,
 *    and cloud-init would find the earlier digest's instance already done;
 *  - a caller's own instance_id wins, counted as a generation when it is new.
 *
 * The history lives in the domain's record, kept after a detach (src/payload/store.ts),
 * and in the domain's metadata while a drive is attached.
 */
import type { DriveIdentity } from '../cloudinit/types.js';

export type InstanceReason = 'first instance' | 'unchanged' | 'settings changed' | 'reinitialize requested' | 'instance_id given';

/** What the agent knows of the last instance it gave a domain; absent: none yet. */
export interface InstanceHistory {
  readonly generation: number;
  readonly instanceId: string;
  /** The drive's content digest (build-drive.ts treeDigest). */
  readonly contentDigest: string;
  readonly firstInstance: boolean;
  /**
   * The agent has seen the domain run with one of its drives (VM.start, or a media change
   * on a running domain). Until then a new instance is still the guest's first: a clone
   * whose settings changed before it ever booted must still get host keys of its own.
   */
  readonly seenRunning: boolean;
  /** The VM.initialized nonce that instance's drive carries: kept when it is built again (on any host). */
  readonly nonce?: string;
}

/** A built drive and the instance it is. */
export interface Instance {
  readonly instanceId: string;
  readonly generation: number;
  readonly reason: InstanceReason;
  readonly firstInstance: boolean;
}

export interface LineageRequest {
  readonly uuid: string;
  readonly history?: InstanceHistory;
  /** The caller asks for a new instance even if nothing changed. */
  readonly reinitialize?: boolean;
  /** The caller's own instance_id, if its settings carry one. */
  readonly requestedId?: string;
}

const AGENT_ID = /^([0-9a-f-]{36})-g([1-9][0-9]{0,8})$/;

/** The generation an agent-made instance-id names for `uuid`, or undefined. */
export function generationOf(instanceId: string, uuid: string): number | undefined {
  const m = AGENT_ID.exec(instanceId);
  return m !== null && m[1] === uuid ? Number(m[2]) : undefined;
}

export function agentInstanceId(uuid: string, generation: number): string {
  return `${uuid}-g${String(generation)}`;
}

/**
 * Builds the domain's next drive with `build` and says which instance it is. At most two
 * builds: with the last instance's identity (kept when the bytes come out the same),
 * then, when they differ, with the next generation's.
 */
export async function buildInstance<T extends { readonly contentDigest: string }>(
  request: LineageRequest,
  build: (identity: DriveIdentity) => Promise<T>,
): Promise<{ image: T; instance: Instance; warnings: string[] }> {
  const { uuid, history, requestedId } = request;
  const next = (history?.generation ?? 0) + 1;
  /** A new instance is the guest's first while the guest has never run one of ours. */
  const freshGuest = history === undefined || (history.firstInstance && !history.seenRunning);
  const warnings: string[] = [];

  if (requestedId !== undefined) {
    const same = requestedId === history?.instanceId;
    const generation = same ? history.generation : next;
    const firstInstance = same ? history.firstInstance : freshGuest;
    const image = await build({ instanceId: requestedId, firstInstance });
    const unchanged = same && image.contentDigest === history.contentDigest;
    if (same && !unchanged) {
      warnings.push(
        `instance_id "${requestedId}" is the one this domain's guest already has, so cloud-init will not apply the changed settings; ` +
          'leave instance_id out (the agent then makes a new one) or give a new one',
      );
    }
    return { image, instance: { instanceId: requestedId, generation, reason: unchanged ? 'unchanged' : 'instance_id given', firstInstance }, warnings };
  }

  if (history !== undefined && request.reinitialize !== true && history.instanceId !== uuid) {
    const again = await build({ instanceId: history.instanceId, firstInstance: history.firstInstance });
    if (again.contentDigest === history.contentDigest) {
      return { image: again, instance: { instanceId: history.instanceId, generation: history.generation, reason: 'unchanged', firstInstance: history.firstInstance }, warnings };
    }
  }
  const instanceId = agentInstanceId(uuid, next);
  const image = await build({ instanceId, firstInstance: freshGuest });
  const reason: InstanceReason = history === undefined ? 'first instance' : request.reinitialize === true ? 'reinitialize requested' : 'settings changed';
  return { image, instance: { instanceId, generation: next, reason, firstInstance: freshGuest }, warnings };
}
