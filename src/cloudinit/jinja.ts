/**
 * A `## template: jinja` user data, checked for what makes cloud-init drop it in the
 * guest with nothing but a log line (handlers/jinja_template.py, templater.py):
 *  - the type is found by the prefix `## template: jinja` (any case, after leading
 *    whitespace), but the renderer reads the template type from the very first line,
 *    `##\s*template:\s*jinja`, so a blank line first, `## template: jinja2` or
 *    `##template:jinja` is taken by one and refused by the other, or by both;
 *  - the rendered text is handed to the handler its own start names: #cloud-config and
 *    #! on every release, #cloud-boothook from 24.4 on; anything else is ignored;
 *  - a syntax error ignores the whole part (logged as a warning from 24.1, as a handler
 *    traceback before).
 * Rendering itself needs the guest's instance data, so only the delimiters are checked
 * here; test/cloudinit renders the templates with each release's own code.
 */
import { BOOTHOOK_TYPE, CLOUD_CONFIG_TYPE, SHELL_TYPE, typeFromStart } from './user-data-types.js';

export type JinjaCheck =
  | { readonly ok: true; readonly renders: string | undefined; readonly body: string }
  | { readonly ok: false; readonly message: string };

/** The handler types a rendered template may start with (#cloud-boothook from 24.4 on only). */
const JINJA_SUBTYPES: ReadonlySet<string> = new Set([CLOUD_CONFIG_TYPE, SHELL_TYPE, BOOTHOOK_TYPE]);

const HEADER_LIKE = /^\s*##\s*template\s*:/i;

/** True when the text means to be a template, whether or not cloud-init would render it. */
export function looksLikeJinja(text: string): boolean {
  return HEADER_LIKE.test(text.slice(0, 256));
}

/** The first unbalanced `{{`, `{%` or `{#`, as a message, or undefined. */
function unbalanced(body: string): string | undefined {
  const pairs: Readonly<Record<string, string>> = { '{{': '}}', '{%': '%}', '{#': '#}' };
  const open = /\{[{%#]/g;
  let m: RegExpExecArray | null;
  while ((m = open.exec(body)) !== null) {
    const close = pairs[m[0]] ?? '';
    const end = body.indexOf(close, m.index + 2);
    const line = body.slice(0, m.index).split('\n').length + 1;
    if (end < 0) return `has ${m[0]} on line ${String(line)} without its ${close}`;
    const next = /\{[{%#]/g;
    next.lastIndex = m.index + 2;
    const inner = next.exec(body);
    if (m[0] !== '{#' && inner !== null && inner.index < end) return `opens ${inner[0]} inside the ${m[0]} on line ${String(line)}`;
    open.lastIndex = end + 2;
  }
  return undefined;
}

export function checkJinja(text: string): JinjaCheck {
  const newline = text.indexOf('\n');
  const first = newline < 0 ? text : text.slice(0, newline);
  const body = newline < 0 ? '' : text.slice(newline + 1);
  if (!/^## template: jinja\s*$/i.test(first)) {
    return {
      ok: false,
      message: `starts with ${JSON.stringify(first.trim().slice(0, 60))}: a template's very first line must be "## template: jinja" (cloud-init renders nothing else as a template, and drops the part in the guest)`,
    };
  }
  const problem = unbalanced(body);
  if (problem !== undefined) return { ok: false, message: `is a jinja template that ${problem} (cloud-init would drop it in the guest)` };
  const start = body.replace(/^\s+/, '');
  // Rendering decides the start when the template begins with a jinja construct.
  if (/^\{[{%#]/.test(start)) return { ok: true, renders: undefined, body };
  const renders = typeFromStart(start);
  if (renders === undefined || !JINJA_SUBTYPES.has(renders)) {
    return {
      ok: false,
      message: `is a jinja template whose text after the header starts with ${JSON.stringify(start.split('\n')[0]?.slice(0, 40) ?? '')}: cloud-init hands a rendered template only to #cloud-config, #! or #cloud-boothook, and drops anything else`,
    };
  }
  return { ok: true, renders, body };
}
