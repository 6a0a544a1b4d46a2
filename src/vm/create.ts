/**
 * VM.create: VDSM's verb, for the domain XML oVirt engine sends with a `PAYLOAD:` CD-ROM
 * (src/vm/vdsm-xml.ts). The same steps as VM.start, on a domain that did not exist:
 *
 *   image built and stored -> intent journaled (an attach with `create`) -> domain
 *   defined as sent -> our image in the payload CD-ROM and our record in its metadata
 *   (insertMedia, as attach does) -> persistent XML checked -> started paused -> live XML
 *   and the image on disk checked -> committed -> resumed, unless launchPaused.
 *
 * Fail closed: any failure destroys and undefines the domain and removes the image and
 * the record, so nothing is left of the request; a crash in between is undone the same
 * way by recovery (src/vm/recover.ts). The payload device never keeps VDSM's
 * `startupPolicy="optional"`: our device XML replaces it whole, so libvirt cannot start
 * the guest without the drive.
 */
import { AgentError } from '../errors.js';
import type { DomainFacts } from '../cloudinit/types.js';
import type { DriveImage } from '../payload/build-drive.js';
import type { BuildSource } from '../payload/drive-source.js';
import { committedRecord, pendingImageOf, settledRecord, type AttachedPayload, type PayloadStore } from '../payload/store.js';
import { ensureChannel } from './channel.js';
import { describeDomain } from './domain-xml.js';
import { assertSource, insertMedia } from './media.js';
import type { DomainControl, DomainRef } from './ports.js';
import { markOf } from './record.js';
import { OVIRT_VM_URI, type VdsmCreate } from './vdsm-xml.js';

/** The prefix libvirt writes the engine's metadata element under when the agent rewrites it. */
const OVIRT_VM_PREFIX = 'ovirt-vm';

/** What the service lends the flow; the caller holds the domain's lock. */
export interface CreateContext {
  readonly hv: DomainControl;
  readonly store: PayloadStore;
  readonly build: (source: BuildSource, facts: DomainFacts) => Promise<DriveImage>;
  readonly verifyOnDisk: (path: string, image: DriveImage) => Promise<void>;
  readonly now: () => string;
  /** A rollback step: its failure is reported, never hiding the original error. */
  readonly cleanup: (what: string, step: () => Promise<void>) => Promise<void>;
  readonly onRun?: (dom: DomainRef) => Promise<unknown>;
  readonly warn?: (message: string) => void;
}

export interface CreateResult {
  readonly domain: DomainRef;
  readonly payload: AttachedPayload;
  readonly image: DriveImage;
  /** The guest was left paused, as `<ovirt-vm:launchPaused>true` asked. */
  readonly paused: boolean;
}

async function exists(hv: DomainControl, nameOrUuid: string): Promise<boolean> {
  return hv.lookup(nameOrUuid).then(
    () => true,
    (err: unknown) => {
      if (err instanceof AgentError && err.code === 'DOMAIN_NOT_FOUND') return false;
      throw err;
    },
  );
}

/**
 * The engine's payload files (user data, passwords among them) are kept nowhere but on
 * the drive: VDSM leaves them base64 in the definition's metadata, where anyone allowed
 * to read the domain's XML reads them. The rest of the engine's metadata stays.
 */
async function dropEnginePayload(hv: DomainControl, dom: DomainRef): Promise<void> {
  const engine = await hv.getMetadata(dom, OVIRT_VM_URI, { config: true });
  if (engine === null) return;
  const kept = engine.replace(/<([\w.-]+:)?payload\b[^>]*\/>|<([\w.-]+:)?payload\b[^>]*>[\s\S]*?<\/\2payload>/g, '');
  if (kept !== engine) await hv.setMetadata(dom, kept, OVIRT_VM_PREFIX, OVIRT_VM_URI, { config: true });
}

export async function createDomain(ctx: CreateContext, req: VdsmCreate): Promise<CreateResult> {
  const { hv, store } = ctx;
  // libvirt would redefine an existing domain with this XML: VDSM refuses that too.
  for (const key of [req.uuid, req.name]) {
    if (await exists(hv, key)) throw new AgentError('DOMAIN_STATE', `domain ${key} already exists; VM.create defines a new domain (VM.start or Payload.attach change an existing one)`);
  }
  const { target, bus, tree, label } = req.payload;
  const macs = describeDomain(req.xml).macs;
  const image = await ctx.build({ kind: 'raw-files', tree, ...(label === undefined ? {} : { label }) }, { uuid: req.uuid, name: req.name, nics: macs.map((mac) => ({ mac })) });
  const path = await store.putImage(req.uuid, image.bytes, image.sha256);
  const pendingImage = pendingImageOf(image, path, ctx.now());
  const { attachedAt } = pendingImage;
  let dom: DomainRef | undefined;
  let started = false;
  try {
    await store.writeRecord({ version: 1, uuid: req.uuid, name: req.name, pending: { op: 'attach', image: pendingImage, start: true, create: true, startedAt: attachedAt } });
    dom = await hv.defineXml(req.xml);
    if (dom.uuid !== req.uuid) throw new AgentError('INTERNAL', `libvirt defined ${dom.uuid}, not the ${req.uuid} the XML names`);
    const defined = dom;
    await dropEnginePayload(hv, defined);
    // The payload CD-ROM becomes the agent's: the record names it, so attach, detach and
    // recovery treat it as any drive the agent put in.
    const desc = describeDomain(await hv.getXml(defined, { inactive: true }));
    await insertMedia(hv, defined, { desc, record: { target, bus }, present: true }, markOf(pendingImage), { config: true });
    await ensureChannel(hv, defined, store.channelPath(req.uuid));
    await assertSource(hv, defined, target, path, false);
    await hv.start(defined, { paused: true });
    started = true;
    await assertSource(hv, defined, target, path, true);
    await ctx.verifyOnDisk(path, image);
    const payload: AttachedPayload = { ...pendingImage, target, bus };
    // Committed while the guest is paused; the resume to come is journaled, as VM.start's.
    await store.writeRecord({ ...committedRecord(undefined, defined, payload, !req.launchPaused), ...(req.launchPaused ? {} : { pending: { op: 'resume' as const, startedAt: ctx.now() } }) });
    if (!req.launchPaused) {
      await ctx.onRun?.(defined).catch((err: unknown) => ctx.warn?.(`cannot read the VM.initialized channel of ${defined.name}: ${err instanceof Error ? err.message : String(err)}`));
      await hv.resume(defined);
    }
    if (!req.launchPaused) {
      await ctx.cleanup(`note that ${defined.name} was resumed`, async () => {
        const record = await store.readRecord(req.uuid);
        if (record?.pending?.op === 'resume') await store.writeRecord(settledRecord(record));
      });
    }
    return { domain: defined, payload, image, paused: req.launchPaused };
  } catch (err) {
    const made = dom;
    if (made !== undefined) {
      if (started) await ctx.cleanup(`destroy ${made.name}`, () => hv.destroy(made));
      await ctx.cleanup(`undefine ${made.name}`, () => hv.undefine(made));
    }
    await ctx.cleanup(`remove ${path}`, () => store.removeImage(path));
    await ctx.cleanup(`remove the record of ${req.name}`, () => store.removeRecord(req.uuid));
    throw err;
  }
}
