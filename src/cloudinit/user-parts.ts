/**
 * A custom script that stays a part of its own next to the agent's cloud-config: a jinja
 * template, a script, a boothook, an include, a part handler (one type, one part), or a
 * MIME multipart of the caller's (its leaf parts, each as given, in order; containers
 * are not kept, cloud-init walks only the leaves). What each becomes is cloud-init's
 * decision, made by the rules of user-data-types.ts; here the agent only refuses what
 * cloud-init would drop or misread in the guest and says where a release differs.
 *
 * A cloud-config the caller keeps as a part (a template, a MIME part) is merged by
 * cloud-init in the guest, after the agent's, under AGENT_MERGE_TYPE; a part bringing
 * its own merge rule is refused, as that rule could replace the agent's settings. A
 * MIME cloud-config part the agent can read now is also checked against the agent's
 * settings, as a merged fragment is (user-data.ts).
 */
import type { Problem } from '../errors.js';
import { checkJinja } from './jinja.js';
import { parseMime, type MimeLeaf } from './mime.js';
import { encodedEntity, withHeader, type Entity } from './multipart.js';
import {
  AGENT_MERGE_TYPE,
  ARCHIVE_TYPE,
  BOOTHOOK_TYPE,
  CLOUD_CONFIG_TYPE,
  INCLUDE_ONCE_TYPE,
  INCLUDE_TYPE,
  JINJA_TYPE,
  JSONP_TYPE,
  PART_HANDLER_TYPE,
  SHELL_BY_FREQUENCY_TYPES,
  SHELL_TYPE,
  SNIFFED_TYPES,
  typeFromStart,
} from './user-data-types.js';
import { loadYaml11, type CloudConfig } from './yaml.js';

const PATH = 'custom_script';

export interface KeptParts {
  readonly entities: readonly Entity[];
  /** The cloud-configs among the parts that the agent can read before the guest does. */
  readonly configs: readonly { readonly where: string; readonly config: CloudConfig }[];
  /** Top-level keys the caller's cloud-config sets, as far as they can be known now. */
  readonly callerKeys: readonly string[];
  readonly warnings: readonly string[];
}

export type KeptResult = { readonly ok: true; readonly parts: KeptParts } | { readonly ok: false; readonly problems: readonly Problem[] };

const FILENAMES: Readonly<Record<string, string>> = {
  [JINJA_TYPE]: 'custom-script.j2',
  [SHELL_TYPE]: 'custom-script.sh',
  [BOOTHOOK_TYPE]: 'custom-boothook.sh',
  [INCLUDE_TYPE]: 'custom-include.txt',
  [INCLUDE_ONCE_TYPE]: 'custom-include.txt',
  [PART_HANDLER_TYPE]: 'custom-part-handler.py',
};

const MERGE_KEYS = /^(merge_how|merge_type)\s*:/m;
const REPORTER_KEYS = /^(bootcmd|vendor_data)\s*:/gm;
const GZIP_TYPES = /^application\/(?:x-)?(?:gzip|gunzip|compress|compressed|gzipped|gzip-compressed)$/;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function asText(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

interface Collector {
  readonly entities: Entity[];
  readonly configs: { where: string; config: CloudConfig }[];
  readonly callerKeys: Set<string>;
  readonly warnings: string[];
  readonly problems: Problem[];
}

function collector(): Collector {
  return { entities: [], configs: [], callerKeys: new Set(), warnings: [], problems: [] };
}

function done(c: Collector): KeptResult {
  if (c.problems.length > 0) return { ok: false, problems: c.problems };
  return { ok: true, parts: { entities: c.entities, configs: c.configs, callerKeys: [...c.callerKeys], warnings: c.warnings } };
}

function ownRule(where: string, rule: string): string {
  return `${where} brings its own merge rule (${rule}): cloud-init merges every cloud-config of the caller's after the agent's by ${AGENT_MERGE_TYPE}, so that no setting of the request is replaced; remove the rule, or set the value through the request's own fields`;
}

/** A template: checked, and the warnings its rendering in the guest calls for. Returns false when refused. */
function template(c: Collector, text: string, where: string): boolean {
  const checked = checkJinja(text);
  if (!checked.ok) {
    c.problems.push({ path: PATH, message: `${where} ${checked.message}` });
    return false;
  }
  if (MERGE_KEYS.test(checked.body)) {
    c.problems.push({ path: PATH, message: ownRule(where, 'a merge_how or merge_type key') });
    return false;
  }
  for (const m of checked.body.matchAll(REPORTER_KEYS)) c.callerKeys.add(m[1] ?? '');
  if (checked.renders === BOOTHOOK_TYPE) {
    c.warnings.push(`${where} is a jinja template rendering to a #cloud-boothook, which cloud-init 20.4 to 24.3 (Debian 11 and 12) do not take from a template and skip: it runs with cloud-init 24.4 and later`);
  } else if (checked.renders !== SHELL_TYPE) {
    c.warnings.push(
      `${where} is a jinja template, rendered in the guest, so the agent cannot check it against the request's settings: cloud-init merges the cloud-config it renders after the agent's by ${AGENT_MERGE_TYPE}, so on a key both set the agent's value stays and lists get the template's items after the agent's`,
    );
  }
  return true;
}

function include(c: Collector, text: string, where: string): boolean {
  const urls = text.split(/\r?\n/).map((l) => l.replace(/^#include(?:-once)?/i, '').trim()).filter((l) => l !== '' && !l.startsWith('#'));
  if (urls.length === 0) {
    c.problems.push({ path: PATH, message: `${where} is an #include that lists no URL` });
    return false;
  }
  c.warnings.push(
    `${where} is an #include of ${urls.map((u) => JSON.stringify(u)).join(', ')}: cloud-init fetches it in the guest at boot, and one URL it cannot fetch fails all user data, the agent's settings with it (cloud-init 20.3 and later); a cloud-config among what it delivers merges by its own rule, and cloud-init's default replaces the agent's keys`,
  );
  return true;
}

export function keptSingle(text: string, type: string): KeptResult {
  const c = collector();
  const filename = FILENAMES[type];
  if (type === ARCHIVE_TYPE || type === JSONP_TYPE || filename === undefined) {
    c.problems.push({ path: PATH, message: refusedType(type) });
    return done(c);
  }
  if (type === JINJA_TYPE && !template(c, text, PATH)) return done(c);
  if ((type === INCLUDE_TYPE || type === INCLUDE_ONCE_TYPE) && !include(c, text, PATH)) return done(c);
  c.entities.push(encodedEntity(type, filename, text, type === JINJA_TYPE ? [`Merge-Type: ${AGENT_MERGE_TYPE}`] : []));
  return done(c);
}

function refusedType(type: string): string {
  return type === JSONP_TYPE
    ? 'is a #cloud-config-jsonp patch, which can replace or remove any of the agent\'s settings in the guest; give a #cloud-config instead'
    : type === ARCHIVE_TYPE
      ? 'is a #cloud-config-archive, whose cloud-config entries cloud-init merges by its default rule, replacing the agent\'s keys; give a MIME multipart instead'
      : `has type ${type}, which the agent does not combine with its own cloud-config`;
}

/** The type cloud-init gives a leaf (user_data.py: declared, or found by the start for the generic types). */
function leafType(leaf: MimeLeaf): string {
  if (!SNIFFED_TYPES.has(leaf.contentType)) return leaf.contentType;
  return typeFromStart(Buffer.from(leaf.payload).toString('utf8')) ?? leaf.contentType;
}

function mimeCloudConfig(c: Collector, leaf: MimeLeaf, where: string): void {
  const text = asText(leaf.payload);
  if (text === undefined) {
    c.problems.push({ path: PATH, message: `${where} is not valid UTF-8, which cloud-init's YAML loader needs` });
    return;
  }
  let parsed: unknown;
  try {
    parsed = loadYaml11(text);
  } catch (err) {
    c.problems.push({ path: PATH, message: `${where} is not valid YAML: ${String(err instanceof Error ? err.message.split('\n')[0] : err)}` });
    return;
  }
  if (parsed === null || parsed === undefined || typeof parsed !== 'object' || Array.isArray(parsed)) {
    c.problems.push({ path: PATH, message: `${where} is not a YAML mapping (cloud-init skips such a part with a warning)` });
    return;
  }
  const config = parsed as CloudConfig;
  if ('merge_how' in config || 'merge_type' in config) {
    c.problems.push({ path: PATH, message: ownRule(where, 'a merge_how or merge_type key') });
    return;
  }
  for (const key of Object.keys(config)) c.callerKeys.add(key);
  c.configs.push({ where, config });
  c.entities.push(withHeader(leaf.raw, `Merge-Type: ${AGENT_MERGE_TYPE}`));
}

function mimeLeaf(c: Collector, leaf: MimeLeaf, handlerSeen: boolean): void {
  const type = leafType(leaf);
  const where = `MIME part ${String(leaf.index)} (${type})`;
  const rule = leaf.headers.get('merge-type') ?? leaf.headers.get('x-merge-type');
  if ((type === CLOUD_CONFIG_TYPE || type === JINJA_TYPE) && rule !== undefined) {
    c.problems.push({ path: PATH, message: ownRule(where, `Merge-Type: ${rule}`) });
    return;
  }
  if (GZIP_TYPES.test(type)) {
    c.problems.push({ path: PATH, message: `${where} is compressed, so the agent cannot check what cloud-init will make of it; give it uncompressed` });
    return;
  }
  if (type === CLOUD_CONFIG_TYPE) {
    mimeCloudConfig(c, leaf, where);
    return;
  }
  if (type === JINJA_TYPE) {
    const text = asText(leaf.payload);
    if (text === undefined) c.problems.push({ path: PATH, message: `${where} is not valid UTF-8, which cloud-init's jinja renderer needs` });
    else if (template(c, text, where)) c.entities.push(withHeader(leaf.raw, `Merge-Type: ${AGENT_MERGE_TYPE}`));
    return;
  }
  if (type === INCLUDE_TYPE || type === INCLUDE_ONCE_TYPE) {
    if (include(c, Buffer.from(leaf.payload).toString('utf8'), where)) c.entities.push({ text: leaf.raw });
    return;
  }
  if (type === ARCHIVE_TYPE || type === JSONP_TYPE) {
    c.problems.push({ path: PATH, message: `${where} ${refusedType(type)}` });
    return;
  }
  if (SHELL_BY_FREQUENCY_TYPES.includes(type)) {
    c.warnings.push(`${where}: cloud-init 20.4 (Debian 11) has no handler for this type and skips the part; it runs with cloud-init 22.1 and later`);
  } else if (![SHELL_TYPE, BOOTHOOK_TYPE, PART_HANDLER_TYPE].includes(type)) {
    if (!handlerSeen) {
      c.problems.push({ path: PATH, message: `${where} has a type no cloud-init handler takes (it would be skipped with a warning), and no #part-handler before it registers one` });
      return;
    }
    c.warnings.push(`${where} has a type only a #part-handler of this user data can take, which the agent cannot check`);
  }
  c.entities.push({ text: leaf.raw });
}

export function keptFromMime(text: string): KeptResult {
  const parsed = parseMime(text);
  if (!parsed.ok) return { ok: false, problems: [{ path: PATH, message: `is MIME (it has a MIME-Version header), but ${parsed.message}` }] };
  const c = collector();
  let handlerSeen = false;
  for (const leaf of parsed.leaves) {
    mimeLeaf(c, leaf, handlerSeen);
    handlerSeen ||= leafType(leaf) === PART_HANDLER_TYPE;
  }
  return done(c);
}
