/**
 * configdrived(8) and configdrive(1) from what the programs print for --help (and, for
 * configdrive, what each command listed under "Commands:" prints for COMMAND --help), so
 * the pages say exactly what the CLI says. The help text is read as blocks (usage lines,
 * paragraphs, "Heading:" lines, indented term/description lists, "Label: text"
 * paragraphs) and written as man(7) roff; test/package keeps every option and every
 * sentence of the help in the rendered pages.
 *
 *   node tools/package/man-pages.mjs AGENT_DIR OUT_DIR VERSION DATE
 *
 * AGENT_DIR holds the compiled configdrive.js and configdrived.js; running them, not
 * importing them, is what --help means (configdrived.js starts the daemon when imported).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import { execaSync } from 'execa';

/**
 * @typedef {{ type: 'usage', lines: string[] }
 *   | { type: 'paragraph', lines: string[] }
 *   | { type: 'label', label: string, lines: string[] }
 *   | { type: 'heading', text: string }
 *   | { type: 'item', term: string, lines: string[], column: number }} Block
 */

/** @returns {Block[]} */
function parseHelp(text) {
  /** @type {Block[]} */
  const blocks = [];
  /** @type {Block | undefined} */
  let open;
  for (const line of text.split('\n')) {
    const body = line.trim();
    if (body === '') {
      open = undefined;
      continue;
    }
    const indent = line.length - line.trimStart().length;
    if (indent === 0) {
      const usage = /^Usage: (.*)$/.exec(body);
      // "Options:", "Global options, before or after COMMAND:": a line of its own, then a list.
      const heading = open === undefined ? /^(\S.*):$/.exec(body) : null;
      // "Exit status: ..." starts its own paragraph even when the help runs it on from the last.
      const label = /^([A-Z][a-z]+(?: [a-z]+)?): (.*)$/.exec(body);
      const lastLine = open !== undefined && 'lines' in open ? open.lines.at(-1) ?? '' : '';
      if (usage) blocks.push((open = { type: 'usage', lines: [usage[1]] }));
      else if (heading) {
        blocks.push({ type: 'heading', text: heading[1] });
        open = undefined;
      } else if (label && (open === undefined || /[.;:]$/.test(lastLine))) blocks.push((open = { type: 'label', label: label[1], lines: [label[2]] }));
      else if (open?.type === 'paragraph' || open?.type === 'label') open.lines.push(body);
      else blocks.push((open = { type: 'paragraph', lines: [body] }));
      continue;
    }
    if (open?.type === 'usage') open.lines.push(body);
    else if (open?.type === 'item' && indent >= open.column) open.lines.push(body);
    else {
      const [, term, description] = /^(\S.*?)(?: {2,}(\S.*))?$/.exec(body) ?? [];
      const column = description === undefined ? indent + 1 : line.lastIndexOf(description);
      blocks.push((open = { type: 'item', term: term ?? body, lines: description === undefined ? [] : [description], column }));
    }
  }
  return blocks;
}

/** Text for a roff text line: every hyphen-minus, backslash and quote as itself. */
function esc(text) {
  return text
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .replace(/'/g, '\\(aq')
    .replace(/`/g, '\\(ga')
    .replace(/[^\x20-\x7e]/gu, (c) => `\\[u${c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}]`)
    .replace(/^\./, '\\&.');
}

/**
 * A usage line or an option term: options bold, placeholders (FILE, NAME=MAC) italic, and
 * in a usage line the leading command words (`configdrive build`) bold.
 */
function markup(text, usage = false) {
  let leading = usage;
  return text
    .split(/( +)/)
    .map((token) => {
      if (/^ +$/.test(token)) return ' ';
      const [, before, core, after] = /^([[(|]*)(.*?)([\])|,.]*)$/.exec(token) ?? ['', '', token, ''];
      leading &&= before === '' && /^[a-z][\w-]*$/.test(core);
      let styled = esc(core);
      if (leading || core.startsWith('-')) styled = `\\fB${styled}\\fR`;
      else if (/^[A-Z][A-Z0-9_]*(?:[=.][\w.]*)*$/.test(core)) styled = `\\fI${styled}\\fR`;
      return `${esc(before)}${styled}${esc(after)}`;
    })
    .join('');
}

/** A usage line as a synopsis: the program name, then the rest with a hanging indent. */
function synopsisOf(usage) {
  const [program, ...rest] = usage.split(' ');
  return [`.SY ${esc(program)}`, markup(rest.join(' '), true), '.YS'].join('\n');
}

function paragraphLines(lines) {
  return lines.map(esc).join('\n');
}

/** Blocks as the body of a section (or of a command's subsection), in their order. */
function renderBlocks(blocks) {
  const out = [];
  for (const block of blocks) {
    switch (block.type) {
      case 'usage':
        out.push('.PP', markup(block.lines.join(' '), true));
        break;
      case 'paragraph':
        out.push('.PP', paragraphLines(block.lines));
        break;
      case 'label':
        out.push('.PP', `\\fB${esc(block.label)}:\\fR`, paragraphLines(block.lines));
        break;
      case 'heading':
        out.push('.PP', `\\fB${esc(block.text)}:\\fR`);
        break;
      case 'item':
        out.push('.TP', markup(block.term), ...(block.lines.length > 0 ? [paragraphLines(block.lines)] : []));
        break;
    }
  }
  return out;
}

/** The first sentence of the first paragraph, as the NAME line's description. */
function whatis(blocks) {
  const first = blocks.find((b) => b.type === 'paragraph');
  if (first === undefined) throw new Error('the help has no description paragraph');
  const sentence = first.lines.join(' ').split(/(?<=\.) /)[0].replace(/\.$/, '');
  return sentence.replace(/^[A-Z](?=[a-z])/, (c) => c.toLowerCase());
}

/**
 * A whole page: SYNOPSIS from the usage lines, DESCRIPTION from the paragraphs, a section
 * per heading (OPTIONS for a list under none) and per label, then SEE ALSO. `expand`
 * renders the items of a heading's list itself (configdrive's commands).
 */
function renderPage({ name, section, version, date, manual, blocks, synopsis, expand, seeAlso }) {
  const description = [];
  /** @type {Map<string, string[]>} */
  const sections = new Map();
  const add = (title, lines) => sections.set(title, [...(sections.get(title) ?? []), ...lines]);
  let heading;
  for (const block of blocks) {
    if (block.type === 'usage') continue;
    if (block.type === 'heading') heading = block.text.toUpperCase();
    else if (block.type === 'item') {
      const title = heading ?? (block.term.startsWith('-') ? 'OPTIONS' : undefined);
      const lines = expand?.(title, block) ?? renderBlocks([block]);
      if (title === undefined) description.push(...lines);
      else add(title, lines);
    } else {
      heading = undefined;
      if (block.type === 'label') add(block.label.toUpperCase(), ['.PP', paragraphLines(block.lines)]);
      else description.push(...renderBlocks([block]));
    }
  }
  const title = (t) => (t.includes(' ') ? `.SH "${t}"` : `.SH ${t}`);
  return [
    `.TH ${name.toUpperCase()} ${section} "${date}" "configdrive\\-agent ${esc(version)}" "${manual}"`,
    '.nh',
    '.ad l',
    '.SH NAME',
    `${esc(name)} \\- ${esc(whatis(blocks))}`,
    '.SH SYNOPSIS',
    ...synopsis.map(synopsisOf),
    // .YS turns hyphenation back on; a path or option split at a hyphen cannot be pasted.
    '.nh',
    '.SH DESCRIPTION',
    ...description,
    ...[...sections].flatMap(([t, lines]) => [title(t), ...lines]),
    '.SH "SEE ALSO"',
    seeAlso.map(([page, sec]) => `\\fB${esc(page)}\\fR(${sec})`).join(',\n'),
    '',
  ].join('\n');
}

function help(agentDir, program, args) {
  return execaSync(process.execPath, [join(agentDir, `${program}.js`), ...args, '--help'], { stdin: 'ignore' }).stdout;
}

function usageOf(blocks) {
  const usage = blocks.find((b) => b.type === 'usage');
  if (usage === undefined) throw new Error('the help has no Usage: line');
  return usage.lines.join(' ');
}

const [agentDir, outDir, version, date] = process.argv.slice(2);
if (date === undefined) throw new Error('usage: man-pages.mjs AGENT_DIR OUT_DIR VERSION DATE');
mkdirSync(outDir, { recursive: true });

const daemon = parseHelp(help(agentDir, 'configdrived', []));
writeFileSync(
  join(outDir, 'configdrived.8'),
  renderPage({ name: 'configdrived', section: 8, version, date, manual: 'System Administration', blocks: daemon, synopsis: [usageOf(daemon)], seeAlso: [['configdrive', 1], ['systemd.socket', 5], ['virsh', 1]] }),
);

const cli = parseHelp(help(agentDir, 'configdrive', []));
/** @type {Map<string, Block[]>} */
const commands = new Map();
let inCommands = false;
for (const block of cli) {
  if (block.type === 'heading') inCommands = block.text === 'Commands';
  else if (block.type === 'item' && inCommands) commands.set(block.term, parseHelp(help(agentDir, 'configdrive', [block.term])));
  else inCommands = false;
}
if (commands.size === 0) throw new Error('configdrive --help lists no commands under "Commands:"');
writeFileSync(
  join(outDir, 'configdrive.1'),
  renderPage({
    name: 'configdrive',
    section: 1,
    version,
    date,
    manual: 'User Commands',
    blocks: cli,
    synopsis: [usageOf(cli), ...[...commands.values()].map(usageOf)],
    // Each command's own --help, under its summary, instead of the one-line list.
    expand: (title, item) => (title === 'COMMANDS' && commands.has(item.term) ? [`.SS "configdrive ${esc(item.term)}"`, '.PP', paragraphLines(item.lines), ...renderBlocks(commands.get(item.term))] : undefined),
    seeAlso: [['configdrived', 8]],
  }),
);
