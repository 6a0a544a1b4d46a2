/** Messages between the main thread and the libvirt worker threads. */
export interface Request {
  readonly id: number;
  readonly op: string;
  readonly args: readonly unknown[];
}

/** libvirt's own error: virErrorNumber, virErrorDomain and the message. */
export interface WireError {
  readonly code: number;
  readonly domain: number;
  readonly message: string;
}

export type Response = { readonly id: number; readonly ok: true; readonly value: unknown } | { readonly id: number; readonly ok: false; readonly error: WireError };
