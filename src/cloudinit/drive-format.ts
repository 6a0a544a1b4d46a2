/**
 * The drive layouts the agent builds, and the volume label cloud-init looks for on each:
 * ConfigDrive reads `config-2` (OpenStack config-drive v2, openstack/latest/...),
 * NoCloud reads `cidata` (meta-data, user-data, vendor-data, network-config at the
 * root). ds-identify matches either label in lower or upper case only (blkid's
 * LABEL=cidata / LABEL=CIDATA), so those are the spellings accepted. A layout under the
 * other's label is read by no datasource at all: refused, not warned about.
 *
 * Plain data and pure functions with no imports: src/rpc/schemas.ts takes its enum from
 * here, and nothing there may load run-time code.
 */

export const DRIVE_FORMATS = ['configdrive', 'nocloud'] as const;
export type DriveFormat = (typeof DRIVE_FORMATS)[number];

export const DEFAULT_DRIVE_FORMAT: DriveFormat = 'configdrive';

export const DRIVE_LABELS = { configdrive: 'config-2', nocloud: 'cidata' } as const satisfies Record<DriveFormat, string>;

export function isDriveFormat(value: string): value is DriveFormat {
  return (DRIVE_FORMATS as readonly string[]).includes(value);
}

/** Why no cloud-init datasource would read `format` under `label`; undefined when one would. */
export function labelProblem(format: DriveFormat, label: string): string | undefined {
  const nocloud = DRIVE_LABELS.nocloud;
  if (format === 'configdrive' && label.toLowerCase() === nocloud) {
    return (
      `label ${JSON.stringify(label)} is NoCloud's, and NoCloud does not read the OpenStack layout (openstack/latest/...): ` +
      `build a NoCloud drive with --format nocloud (RPC: driveFormat "nocloud"), or keep the label ${DRIVE_LABELS.configdrive}`
    );
  }
  if (format === 'nocloud' && label !== nocloud && label !== nocloud.toUpperCase()) {
    return `a NoCloud drive must be labelled ${nocloud} (or ${nocloud.toUpperCase()}), not ${JSON.stringify(label)}: cloud-init looks for NoCloud files only on such a volume`;
  }
  return undefined;
}
