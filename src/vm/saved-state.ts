/**
 * Guest state kept outside a running QEMU that names the domain's drive: a managed save
 * image (`virsh managedsave`, and libvirt-guests' default at every host shutdown on
 * Debian), which the next start restores, or a save file (`virsh save`), which libvirt
 * marks by the shut-off reason `saved`. Restoring either reopens the image the guest had
 * when it was saved: that image must stay, and the drive must not change under it, or the
 * restore fails and the saved guest is lost. So a change to such a domain is refused,
 * naming the state and how to end it, and a Run Once drive's run has not ended.
 *
 * What libvirt cannot tell: a save file whose domain libvirtd has forgotten the reason
 * of (it restarted: the reason is then `unknown`). Such a domain's Run Once image is
 * kept too (its run is not known to have ended); a change to it is not refused.
 */
import { AgentError } from '../errors.js';
import type { DomainControl, DomainRef } from './ports.js';

/** What saved state the domain has, in an operator's words, or undefined for none. */
export async function savedState(hv: DomainControl, dom: DomainRef): Promise<string | undefined> {
  const { state, reason } = await hv.stateDetail(dom);
  if (state !== 'shutoff') return undefined;
  if (await hv.hasManagedSave(dom)) return 'a managed save image (virsh managedsave, or libvirt-guests at host shutdown), which its next start restores';
  if (reason === 'saved') return 'a saved state (virsh save FILE), which virsh restore FILE brings back';
  return undefined;
}

/** Refuses `what` on a domain with saved state: the change would make the saved guest unrestorable. */
export async function refuseIfSaved(hv: DomainControl, dom: DomainRef, what: string): Promise<void> {
  const saved = await savedState(hv, dom);
  if (saved === undefined) return;
  throw new AgentError(
    'DOMAIN_STATE',
    `domain ${dom.name} has ${saved}; ${what} would change the drive that saved guest reopens and lose it: ` +
      'restore the domain first (its guest keeps its drive), or discard the saved state (virsh managedsave-remove, or start it afresh) if the guest is not wanted',
  );
}

/**
 * Whether the run a drive of one run (Run Once) belonged to has ended: shut off by a
 * shutdown, a destroy, a crash or a failed start, not saved nor of unknown reason.
 */
export async function runEnded(hv: DomainControl, dom: DomainRef): Promise<boolean> {
  const { state, reason } = await hv.stateDetail(dom);
  if (state !== 'shutoff') return false;
  if (reason === 'saved' || reason === 'unknown') return false;
  return !(await hv.hasManagedSave(dom));
}
