/**
 * The assembler: every translator's output placed at its path on the drive, in the
 * layout of the drive's format (drive-format.ts). Both layouts are made from the same
 * user data, the same resolved NICs and the same network model; only the files differ.
 * Pure: the same Initialization and facts give the same bytes (no clock, no randomness).
 */
import { AgentError, invalid, type Problem } from '../errors.js';
import type { Initialization } from '../initialization/types.js';
import { buildEni, ENI_CONTENT_PATH } from './eni.js';
import { DEFAULT_DRIVE_FORMAT, type DriveFormat } from './drive-format.js';
import { buildVendorData, reporterCloudConfig, reportNonce, VENDOR_DATA_PATH } from './init-reporter.js';
import { buildMetaData, buildNoCloudMetaData } from './meta-data.js';
import { renderNetworkConfig } from './network-config.js';
import { renderNetworkData } from './network-data.js';
import { planNetwork } from './network-model.js';
import { resolveNics } from './nics.js';
import type { DomainFacts, DriveIdentity, DriveTree } from './types.js';
import { buildUserData } from './user-data.js';

export interface BuiltDrive {
  readonly tree: DriveTree;
  readonly instanceId: string;
  /** The VM.initialized nonce the drive carries, when it carries the reporter. */
  readonly nonce?: string;
  readonly warnings: string[];
}

export const META_DATA_PATH = 'openstack/latest/meta_data.json';
export const USER_DATA_PATH = 'openstack/latest/user_data';
export const NETWORK_DATA_PATH = 'openstack/latest/network_data.json';
export const ENI_PATH = `openstack${ENI_CONTENT_PATH}`;

/** NoCloud's files, at the volume's root. */
export const NOCLOUD_PATHS = { metaData: 'meta-data', userData: 'user-data', vendorData: 'vendor-data', networkConfig: 'network-config' } as const;

const encoder = new TextEncoder();

/**
 * cloud-init rejects a whole drive over an empty optional file (an empty
 * network_data.json is not JSON): every file we put on the drive has content.
 */
function assertNoneEmpty(files: ReadonlyMap<string, string>): void {
  for (const [path, text] of files) if (text === '') throw new AgentError('INTERNAL', `${path} would be empty`);
}

/**
 * The identity of a drive built outside any lineage (an offline `configdrive build`):
 * the caller's instance_id, or the domain's first generation.
 */
export function firstIdentity(init: Initialization, facts: DomainFacts): DriveIdentity {
  return { instanceId: init.instanceId ?? `${facts.uuid}-g1`, firstInstance: true };
}

export function buildDriveTree(
  init: Initialization,
  facts: DomainFacts,
  identity: DriveIdentity = firstIdentity(init, facts),
  format: DriveFormat = DEFAULT_DRIVE_FORMAT,
): BuiltDrive {
  const { instanceId } = identity;
  const nocloud = format === 'nocloud';
  const problems: Problem[] = [];
  const warnings: string[] = [];
  if (init.domain !== undefined && init.hostName === undefined) {
    warnings.push(`domain "${init.domain}" is ignored: it only forms the FQDN together with a host name`);
  }

  const nics = resolveNics(init, facts);
  problems.push(...nics.problems);
  warnings.push(...nics.warnings);

  const userData = buildUserData(init, identity, nics.nics);
  problems.push(...userData.problems);
  warnings.push(...userData.warnings);

  const files = new Map<string, string>();
  let eni: string | undefined;
  if (init.networkProtocol === 'eni') {
    const built = buildEni(init, nics.nics);
    problems.push(...built.problems);
    warnings.push(...built.warnings);
    eni = built.text;
    if (eni !== undefined && !nocloud) files.set(ENI_PATH, eni);
  } else {
    const plan = planNetwork(init, nics.nics);
    warnings.push(...plan.warnings);
    if (plan.model !== undefined) files.set(nocloud ? NOCLOUD_PATHS.networkConfig : NETWORK_DATA_PATH, (nocloud ? renderNetworkConfig : renderNetworkData)(plan.model));
  }
  if (problems.length > 0) throw invalid('INVALID_INITIALIZATION', 'Cannot build the config drive', problems);

  if (nocloud) {
    files.set(NOCLOUD_PATHS.metaData, buildNoCloudMetaData(init, { instanceId, rootKeys: userData.rootKeys, ...(eni === undefined ? {} : { eni }) }));
    files.set(NOCLOUD_PATHS.userData, userData.text);
  } else {
    files.set(META_DATA_PATH, buildMetaData(init, facts, { instanceId, rootKeys: userData.rootKeys, eni: eni !== undefined }));
    files.set(USER_DATA_PATH, userData.text);
  }
  let nonce: string | undefined;
  if (facts.reportKey !== undefined) {
    nonce = facts.knownNonce?.instanceId === instanceId ? facts.knownNonce.nonce : reportNonce(facts.reportKey, facts.uuid, instanceId);
    // NoCloud hands vendor-data to the user-data processor as it is; ConfigDrive wants JSON.
    if (nocloud) files.set(NOCLOUD_PATHS.vendorData, reporterCloudConfig(instanceId, nonce));
    else files.set(VENDOR_DATA_PATH, buildVendorData(instanceId, nonce));
    // cloud-init gives user data precedence over vendor data: these keys of the caller's
    // replace or switch off the reporter, and the domain would stay pending for good.
    if (userData.ignition) {
      warnings.push("custom_script is an Ignition config: the agent's VM.initialized reporter is cloud-init vendor data, which an Ignition guest does not run, so this guest will not report, and Payload.get will show it pending");
    }
    for (const key of userData.callerKeys.filter((k) => k === 'bootcmd' || k === 'vendor_data')) {
      warnings.push(`custom_script sets ${key}, which takes the place of the agent's VM.initialized reporter in vendor data: this guest will not report, and Payload.get will show it pending`);
    }
  }
  assertNoneEmpty(files);

  const tree = new Map<string, Uint8Array>();
  for (const path of [...files.keys()].sort()) tree.set(path, encoder.encode(files.get(path)));
  return { tree, instanceId, ...(nonce === undefined ? {} : { nonce }), warnings };
}
