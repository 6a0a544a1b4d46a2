/**
 * Which of the domain's NICs each requested NIC is. cloud-init matches a link to a guest
 * interface by MAC (then renames it to the requested name), so the MAC is what makes a
 * static address land on the intended interface rather than on whatever the guest
 * kernel happened to call `eth0`.
 */
import type { Problem } from '../errors.js';
import type { Initialization, NicConfiguration } from '../initialization/types.js';
import type { DomainFacts } from './types.js';

export interface ResolvedNic {
  readonly nic: NicConfiguration;
  /** Index in init.nics, for problem paths. */
  readonly index: number;
  /** Absent only for an offline build without the domain's NICs (with a warning). */
  readonly mac?: string;
}

export interface ResolvedNics {
  readonly nics: readonly ResolvedNic[];
  readonly problems: readonly Problem[];
  readonly warnings: readonly string[];
}

const ETH_N = /^eth(0|[1-9][0-9]*)$/;

export function resolveNics(init: Initialization, facts: DomainFacts): ResolvedNics {
  const problems: Problem[] = [];
  const warnings: string[] = [];
  const domainMacs = facts.nics.map((n) => n.mac.toLowerCase());
  const seen = new Map<string, number>();

  const nics = init.nics.map((nic, index): ResolvedNic => {
    const path = `nics[${String(index)}]`;
    let mac = nic.mac;
    if (mac !== undefined) {
      if (domainMacs.length > 0 && !domainMacs.includes(mac)) {
        problems.push({ path: `${path}.mac`, message: `${mac} is not one of the domain's NICs (${domainMacs.join(', ')})` });
      }
    } else if (domainMacs.length === 0) {
      warnings.push(
        `nic ${nic.name}: no MAC address known (offline build without the domain's NICs); ` +
          'the settings apply to whichever guest interface the kernel names ' + nic.name,
      );
    } else {
      const n = ETH_N.exec(nic.name);
      mac = n === null ? undefined : domainMacs[Number(n[1])];
      if (mac === undefined) {
        problems.push({
          path,
          message:
            n === null
              ? `cannot tell which of the domain's ${String(domainMacs.length)} NICs "${nic.name}" is: give its mac, or name it eth<N> for the Nth NIC`
              : `${nic.name} would be NIC number ${String(Number(n[1]) + 1)} but the domain has ${String(domainMacs.length)} NIC${domainMacs.length === 1 ? '' : 's'} and no mac was given`,
        });
      }
    }
    if (mac !== undefined) {
      const other = seen.get(mac);
      // Named, not numbered: the index is the native list's, which the caller's document need not have.
      if (other !== undefined) problems.push({ path, message: `has the same MAC ${mac} as NIC "${init.nics[other]!.name}"` });
      seen.set(mac, index);
    }
    return mac === undefined ? { nic, index } : { nic, index, mac };
  });
  return { nics, problems, warnings };
}
