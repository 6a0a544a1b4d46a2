/**
 * libvirt's failures as AgentErrors, keeping libvirt's own numbers: `code` is
 * virErrorNumber (e.g. 42 VIR_ERR_NO_DOMAIN), `domain` virErrorDomain (e.g. 10 QEMU).
 */
import { AgentError } from '../errors.js';
import type { WireError } from './protocol.js';

export const VIR_ERR = {
  OPERATION_FAILED: 9,
  XML_ERROR: 27,
  XML_DETAIL: 35,
  NO_DOMAIN: 42,
  OPERATION_INVALID: 55,
  NO_DOMAIN_METADATA: 80,
  OPERATION_UNSUPPORTED: 84,
} as const;

export class LibvirtError extends AgentError {
  readonly libvirtCode: number;
  readonly libvirtDomain: number;

  constructor(error: WireError, operation: string) {
    super(error.code === VIR_ERR.NO_DOMAIN ? 'DOMAIN_NOT_FOUND' : 'LIBVIRT_ERROR', `${operation}: ${error.message} (libvirt error ${String(error.code)}, domain ${String(error.domain)})`, {
      details: { libvirtCode: error.code, libvirtDomain: error.domain, libvirtMessage: error.message },
    });
    this.libvirtCode = error.code;
    this.libvirtDomain = error.domain;
  }
}
