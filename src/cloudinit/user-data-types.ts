/**
 * How cloud-init tells user-data types apart, learned from its user_data.py and
 * handlers/__init__.py (the same rules in 20.4 to 26.2): a blob is MIME when
 * `mime-version:` occurs in its first 4096 bytes, whatever the case; anything else, and
 * every MIME part typed text/plain, text/x-not-multipart or text/x-shellscript, is typed
 * by how it starts, once leading whitespace is dropped, case-insensitively, longest
 * prefix first.
 */

export const CLOUD_CONFIG_TYPE = 'text/cloud-config';
export const JINJA_TYPE = 'text/jinja2';
export const SHELL_TYPE = 'text/x-shellscript';
export const BOOTHOOK_TYPE = 'text/cloud-boothook';
export const INCLUDE_TYPE = 'text/x-include-url';
export const INCLUDE_ONCE_TYPE = 'text/x-include-once-url';
export const PART_HANDLER_TYPE = 'text/part-handler';
export const ARCHIVE_TYPE = 'text/cloud-config-archive';
export const JSONP_TYPE = 'text/cloud-config-jsonp';
/** Scripts cloud-init runs per boot, per instance or once: MIME-only types, since 22.1. */
export const SHELL_BY_FREQUENCY_TYPES: readonly string[] = ['text/x-shellscript-per-boot', 'text/x-shellscript-per-instance', 'text/x-shellscript-per-once'];

const PREFIXES: readonly (readonly [string, string])[] = (
  [
    ['#include', INCLUDE_TYPE],
    ['#include-once', INCLUDE_ONCE_TYPE],
    ['#!', SHELL_TYPE],
    ['#cloud-config', CLOUD_CONFIG_TYPE],
    ['#part-handler', PART_HANDLER_TYPE],
    ['#cloud-boothook', BOOTHOOK_TYPE],
    ['#cloud-config-archive', ARCHIVE_TYPE],
    ['#cloud-config-jsonp', JSONP_TYPE],
    ['## template: jinja', JINJA_TYPE],
  ] as const
).toSorted((a, b) => b[0].length - a[0].length);

/** The type cloud-init gives a payload by its start, or undefined when none applies. */
export function typeFromStart(text: string): string | undefined {
  const start = text.slice(0, 64).replace(/^\s+/, '').toLowerCase();
  return PREFIXES.find(([prefix]) => start.startsWith(prefix))?.[1];
}

/** The types whose MIME parts cloud-init re-types by their content. */
export const SNIFFED_TYPES: ReadonlySet<string> = new Set(['text/plain', 'text/x-not-multipart', SHELL_TYPE]);

/** cloud-init's test for "this user data is a MIME message". */
export function isMime(text: string): boolean {
  return Buffer.from(text, 'utf8').subarray(0, 4096).toString('latin1').toLowerCase().includes('mime-version:');
}

/**
 * The merge rule the agent gives every user cloud-config kept as a part. Parts are
 * merged in order into what came before (handlers/cloud_config.py), and the agent's own
 * part is first: `dict(no_replace,recurse_list)` keeps a value already set (the agent's)
 * and descends into mappings, `list(append)` puts the part's items after the earlier
 * ones. cloud-init's default, `dict(replace)+list()+str()`, would let any part replace
 * the agent's keys whole, `users` and `runcmd` included.
 */
export const AGENT_MERGE_TYPE = 'dict(no_replace,recurse_list)+list(append)+str()';

/** Lone UTF-16 surrogates: a string holding one has no UTF-8 form, so it cannot reach the drive as given. */
export function isWellFormedText(text: string): boolean {
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(text);
}
