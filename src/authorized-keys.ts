/**
 * One authorized_keys line as sshd(8) reads it (AUTHORIZED_KEYS FILE FORMAT):
 * `[options] keytype key [comment]`. Options are comma-separated, with no space outside
 * double quotes; a quoted value may hold commas and spaces, and `\"` inside it is a quote.
 * Shared by the input edge (src/initialization/checks.ts) and the translator that puts
 * keys on the drive (src/cloudinit/users.ts), so both refuse exactly the same lines.
 *
 * Refused is what sshd would refuse and so never authorize: an unknown option (sshd
 * logs "bad options" and skips the line), a value-taking option without its quoted value
 * or a flag given one, an unclosed quote, an unknown key type. The key blob is not
 * decoded: oVirt's own examples abbreviate it ("AAAAB3Nza[...]").
 */

export type KeyLineCheck = { readonly ok: true; readonly line: KeyLine } | { readonly ok: false; readonly message: string };

export interface KeyLine {
  /** The options as written, `''` when there are none. */
  readonly options: string;
  readonly keyType: string;
  readonly blob: string;
  readonly comment: string;
}

const KEY_TYPES: ReadonlySet<string> = new Set([
  'ssh-rsa',
  'ssh-dss',
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
]);

/** sshd's flag options (auth-options.c), lower-case: they take no value. */
const FLAG_OPTIONS: ReadonlySet<string> = new Set([
  'agent-forwarding',
  'cert-authority',
  'no-agent-forwarding',
  'no-port-forwarding',
  'no-pty',
  'no-user-rc',
  'no-x11-forwarding',
  'no-touch-required',
  'port-forwarding',
  'pty',
  'restrict',
  'touch-required',
  'user-rc',
  'verify-required',
  'x11-forwarding',
]);

/** Options that take a double-quoted value. */
const VALUE_OPTIONS: ReadonlySet<string> = new Set([
  'command',
  'environment',
  'expiry-time',
  'from',
  'permitlisten',
  'permitopen',
  'principals',
  'tunnel',
]);

// eslint-disable-next-line no-control-regex -- control characters are what is refused; a tab separates fields
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;

function show(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
}

/** Splits the options field at unquoted commas; undefined when a quote is left open. */
function splitOptions(field: string): string[] | undefined {
  const out: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < field.length; i++) {
    const c = field[i];
    if (quoted && c === '\\' && field[i + 1] === '"') {
      current += '\\"';
      i++;
    } else if (c === '"') {
      quoted = !quoted;
      current += c;
    } else if (c === ',' && !quoted) {
      out.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  if (quoted) return undefined;
  out.push(current);
  return out;
}

function checkOption(option: string): string | undefined {
  const eq = option.indexOf('=');
  const name = (eq < 0 ? option : option.slice(0, eq)).toLowerCase();
  if (name === '') return 'has an empty option (two commas, or a comma at an end)';
  if (FLAG_OPTIONS.has(name)) return eq < 0 ? undefined : `option ${name} takes no value`;
  if (!VALUE_OPTIONS.has(name)) return `has an option sshd does not know: ${show(option)}`;
  const value = eq < 0 ? '' : option.slice(eq + 1);
  if (!/^"(?:[^"\\]|\\.)*"$/.test(value)) return `option ${name} needs a double-quoted value, as in ${name}="..."`;
  return undefined;
}

/** Where the options field ends: the first space or tab outside double quotes. */
function optionsEnd(line: string): number {
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted && c === '\\' && line[i + 1] === '"') i++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && (c === ' ' || c === '\t')) return i;
  }
  return line.length;
}

function keyFields(rest: string): { keyType: string; blob: string; comment: string } | undefined {
  const m = /^(\S+)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(rest);
  if (m === null) return undefined;
  return { keyType: m[1] ?? '', blob: m[2] ?? '', comment: m[3] ?? '' };
}

export function parseAuthorizedKey(value: string): KeyLineCheck {
  const bad = (message: string): KeyLineCheck => ({ ok: false, message });
  if (CONTROL.test(value)) return bad(`${show(value)} contains a newline or another control character`);
  const line = value.trim();
  if (line === '') return bad('is empty');
  if (line !== value) return bad(`${show(value)} has leading or trailing spaces`);
  const plain = keyFields(line);
  if (plain !== undefined && KEY_TYPES.has(plain.keyType)) return { ok: true, line: { options: '', ...plain } };
  const firstToken = /^\S+/.exec(line)?.[0] ?? '';
  if (!firstToken.includes('=') && !firstToken.includes(',') && !FLAG_OPTIONS.has(firstToken.toLowerCase())) {
    if (plain === undefined && KEY_TYPES.has(firstToken)) return bad(`${show(value)} has a key type but no key`);
    return bad(`${show(value)} is not an SSH public key (it must start with a key type such as ssh-ed25519 or ssh-rsa, or with options such as from="10.0.0.0/8")`);
  }
  const end = optionsEnd(line);
  const options = line.slice(0, end);
  const parts = splitOptions(options);
  if (parts === undefined) return bad(`${show(value)} leaves a double quote open in its options`);
  for (const option of parts) {
    const problem = checkOption(option);
    if (problem !== undefined) return bad(`${show(value)} ${problem}`);
  }
  const rest = line.slice(end).replace(/^[ \t]+/, '');
  const key = keyFields(rest);
  if (key === undefined || !KEY_TYPES.has(key.keyType)) {
    const type = /^\S+/.exec(rest)?.[0];
    if (type !== undefined && KEY_TYPES.has(type)) return bad(`${show(value)} has a key type but no key`);
    return bad(`${show(value)} has options but no key type after them (such as ssh-ed25519 or ssh-rsa)`);
  }
  return { ok: true, line: { options, ...key } };
}
