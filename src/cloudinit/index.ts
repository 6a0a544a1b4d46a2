/** Initialization -> config-drive file tree. Pure translators; packing is src/iso's job. */
export { buildDriveTree, firstIdentity, META_DATA_PATH, USER_DATA_PATH, NETWORK_DATA_PATH, ENI_PATH, NOCLOUD_PATHS } from './drive.js';
export { DEFAULT_DRIVE_FORMAT, DRIVE_FORMATS, DRIVE_LABELS, isDriveFormat, labelProblem, type DriveFormat } from './drive-format.js';
export type { BuiltDrive } from './drive.js';
export type { DomainFacts, DriveIdentity, DriveTree } from './types.js';
export { deriveSalt, passwordHashCache, prehashPasswords } from './passwords.js';
export { DATASOURCE_PIN_PATH } from './datasource-pin.js';
export { MAX_REPORT_BYTES, REPORT_PORT, reportNonce, VENDOR_DATA_PATH } from './init-reporter.js';
