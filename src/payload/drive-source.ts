/**
 * What a drive is made from: one union from the request's edge (src/rpc/actions.ts)
 * through the service to the build threads. A document is parsed where it is built (a
 * build thread), so the event loop only routes it.
 */
import type { DriveFormat } from '../cloudinit/index.js';
import type { DriveTree } from '../cloudinit/types.js';
import type { InputFormat } from '../initialization/index.js';
import type { Initialization } from '../initialization/types.js';

export type DriveSource =
  /** Initialization settings as the caller wrote them (XML, JSON, YAML, or a JSON value). */
  | { readonly kind: 'initialization'; readonly document: string | object; readonly format?: InputFormat; readonly driveFormat?: DriveFormat }
  /**
   * Settings parsed already, which only tests pass (a request always carries a
   * document): built by the same runBuildJob, always on the calling thread (see
   * BuildPool.build), with errors at the settings' own field names.
   */
  | { readonly kind: 'settings'; readonly initialization: Initialization; readonly driveFormat?: DriveFormat }
  /** VDSM's raw payload, packed as sent; `label` its volId (the daemon's label when absent). */
  | { readonly kind: 'raw-files'; readonly tree: DriveTree; readonly label?: string }
  /** A drive built earlier, by path: a Payload.build result or a file in an imageDirs directory. */
  | { readonly kind: 'image'; readonly path: string };

/** What a build thread takes: every source but a drive already built. */
export type BuildSource = Exclude<DriveSource, { readonly kind: 'image' }>;
