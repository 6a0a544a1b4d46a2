/**
 * The one error module. Every failure the agent reports carries a stable string code
 * from ERROR_CODES; rpc/ turns it into a JSON-RPC error in exactly one place, the CLI
 * into a one-line message and an exit status. Messages say what was wrong and where,
 * e.g. `nic_configurations[1].ip.netmask: "255.0.255.0" is not a valid netmask`.
 */

/** JSON-RPC 2.0 reserves -32768..-32000; domain errors use the server-error range. */
export const ERROR_CODES = {
  // input
  PARSE_ERROR: { rpc: -32700, expected: true, summary: 'request is not valid JSON' },
  INVALID_REQUEST: { rpc: -32600, expected: true, summary: 'request is not a valid JSON-RPC 2.0 request' },
  METHOD_NOT_FOUND: { rpc: -32601, expected: true, summary: 'no such method' },
  INVALID_PARAMS: { rpc: -32602, expected: true, summary: 'request parameters are invalid' },
  INVALID_INITIALIZATION: { rpc: -32001, expected: true, summary: 'initialization settings are invalid' },
  INVALID_TREE: { rpc: -32002, expected: true, summary: 'file tree cannot be put on a drive' },
  INVALID_LABEL: { rpc: -32003, expected: true, summary: 'volume label is invalid' },
  // images
  ISO_MALFORMED: { rpc: -32010, expected: true, summary: 'image is not a readable ISO9660 volume' },
  ISO_VERIFY_FAILED: { rpc: -32011, expected: false, summary: 'image read back from disk differs from what was built' },
  ISO_WRITER_FAILED: { rpc: -32012, expected: false, summary: 'ISO writer failed' },
  // domains and payloads
  DOMAIN_NOT_FOUND: { rpc: -32020, expected: true, summary: 'no such domain' },
  DOMAIN_STATE: { rpc: -32021, expected: true, summary: 'domain is not in a state that allows this' },
  PAYLOAD_NOT_FOUND: { rpc: -32022, expected: true, summary: 'domain has no payload from this agent' },
  PAYLOAD_CONFLICT: { rpc: -32023, expected: true, summary: 'another change to this domain is in progress' },
  LIBVIRT_ERROR: { rpc: -32030, expected: false, summary: 'libvirt reported an error' },
  // the daemon itself
  UNAUTHORIZED: { rpc: -32040, expected: true, summary: 'caller is not allowed' },
  BUSY: { rpc: -32041, expected: true, summary: 'too many requests in flight' },
  SHUTTING_DOWN: { rpc: -32042, expected: true, summary: 'daemon is shutting down' },
  CONFIG_INVALID: { rpc: -32043, expected: true, summary: 'configuration is invalid' },
  HOST_SETUP: { rpc: -32044, expected: false, summary: 'this host or process is not set up for the operation' },
  IO_ERROR: { rpc: -32050, expected: false, summary: 'file system operation failed' },
  INTERNAL: { rpc: -32603, expected: false, summary: 'internal error' },
} as const satisfies Record<string, { rpc: number; expected: boolean; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** One problem in an input, located by a field path such as `users[0].password`. */
export interface Problem {
  readonly path: string;
  readonly message: string;
}

export interface AgentErrorOptions {
  readonly cause?: unknown;
  /** Every problem found, when the input had more than one. */
  readonly problems?: readonly Problem[];
  /** Extra machine-readable facts (never secrets), e.g. libvirt's own error code. */
  readonly details?: Readonly<Record<string, string | number | boolean>>;
  /** What failed, without its problems (invalid's `what`): the message when they are restated. */
  readonly what?: string;
}

export class AgentError extends Error {
  override readonly name = 'AgentError';
  readonly code: ErrorCode;
  readonly problems: readonly Problem[];
  readonly details: Readonly<Record<string, string | number | boolean>>;
  readonly what: string;

  constructor(code: ErrorCode, message: string, options: AgentErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.problems = options.problems ?? [];
    this.details = options.details ?? {};
    this.what = options.what ?? message;
  }

  /** Expected errors are the caller's doing and log at info; the rest at error. */
  get expected(): boolean {
    return ERROR_CODES[this.code].expected;
  }

  get rpcCode(): number {
    return ERROR_CODES[this.code].rpc;
  }
}

/** Builds the error for an input that has one or more problems, all listed. */
export function invalid(code: ErrorCode, what: string, problems: readonly Problem[]): AgentError {
  const first = problems[0];
  const head = first === undefined ? what : `${what}: ${formatProblem(first)}`;
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : '';
  return new AgentError(code, head + more, { problems, what });
}

/** The same failure with its problems put another way (e.g. at the caller's own field paths). */
export function restated(err: AgentError, problems: readonly Problem[]): AgentError {
  const { message } = invalid(err.code, err.what, problems);
  return new AgentError(err.code, message, { problems, what: err.what, details: err.details, cause: err });
}

export function formatProblem(p: Problem): string {
  return p.path === '' ? p.message : `${p.path}: ${p.message}`;
}

/** Any thrown value as an AgentError; unknown failures become INTERNAL with the cause kept. */
export function toAgentError(err: unknown): AgentError {
  if (err instanceof AgentError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new AgentError('INTERNAL', message, { cause: err });
}
