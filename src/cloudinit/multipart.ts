/**
 * user_data as a MIME multipart: the agent's cloud-config first, then the caller's parts
 * in their order. First, because cloud-init merges cloud-config parts in order, each
 * into what came before, by that part's own rule (Merge-Type): the caller's carry
 * AGENT_MERGE_TYPE, under which what the agent set stays (user-data-types.ts).
 *
 * The boundary is derived from the content, so the same request gives the same bytes,
 * and is checked to occur in no part. The agent's own parts are base64-encoded, so no
 * byte of them (a line starting with `--`, CR, non-UTF-8) can be read as MIME structure;
 * a caller's MIME part goes on as it was given.
 */
import { createHash } from 'node:crypto';
import { CLOUD_CONFIG_TYPE } from './user-data-types.js';

/** One MIME entity: headers, a blank line, the body. */
export interface Entity {
  readonly text: string;
}

function base64Lines(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64').replace(/.{1,76}/g, '$&\n').replace(/\n$/, '');
}

/** An entity of the agent's making: the text base64-encoded under the given type and headers. */
export function encodedEntity(type: string, filename: string, text: string, extraHeaders: readonly string[] = []): Entity {
  return {
    text: [
      `Content-Type: ${type}; charset="utf-8"`,
      'MIME-Version: 1.0',
      'Content-Transfer-Encoding: base64',
      `Content-Disposition: attachment; filename="${filename}"`,
      ...extraHeaders,
      '',
      base64Lines(text),
    ].join('\n'),
  };
}

/** A caller's entity with one header put before its own, in the line ending it uses. */
export function withHeader(raw: string, header: string): Entity {
  const eol = /\r\n|\r|\n/.exec(raw)?.[0] ?? '\n';
  return { text: `${header}${eol}${raw}` };
}

function boundaryFor(parts: readonly Entity[], attempt: number): string {
  const hash = createHash('sha256').update(String(attempt));
  for (const part of parts) hash.update('\0').update(part.text);
  return `==configdrive-agent-${hash.digest('hex').slice(0, 32)}==`;
}

export function multipartUserData(cloudConfig: string, parts: readonly Entity[]): string {
  const all = [encodedEntity(CLOUD_CONFIG_TYPE, 'cloud-config.txt', cloudConfig), ...parts];
  let attempt = 0;
  let boundary = boundaryFor(all, attempt);
  while (all.some((p) => p.text.includes(boundary))) boundary = boundaryFor(all, ++attempt);
  // The line end before a delimiter belongs to the delimiter: each part keeps its last byte.
  const body = all.map((p) => `--${boundary}\n${p.text}\n`).join('');
  return `Content-Type: multipart/mixed; boundary="${boundary}"\nMIME-Version: 1.0\n\n${body}--${boundary}--\n`;
}
