import { AgentError } from '../errors.js';
import type { PayloadStore } from '../payload/store.js';
import type { DomainControl, DomainRef } from './ports.js';

/** The domain, or null when libvirt has none with this UUID (any other failure throws). */
export async function lookupOrNull(hv: DomainControl, uuid: string): Promise<DomainRef | null> {
  try {
    return await hv.lookup(uuid);
  } catch (err) {
    if (err instanceof AgentError && err.code === 'DOMAIN_NOT_FOUND') return null;
    throw err;
  }
}

/**
 * The domain by name or UUID, from libvirt or, when libvirt no longer has it (it left in
 * a migration, or has not arrived yet), from the agent's own records.
 */
export async function findRecordDomain(hv: DomainControl, store: PayloadStore, nameOrUuid: string): Promise<DomainRef> {
  try {
    return await hv.lookup(nameOrUuid);
  } catch (err) {
    if (!(err instanceof AgentError && err.code === 'DOMAIN_NOT_FOUND')) throw err;
    const record = (await store.listRecords()).find((r) => r.uuid === nameOrUuid.toLowerCase() || r.name === nameOrUuid);
    if (record === undefined) throw err;
    return { uuid: record.uuid, name: record.name };
  }
}
