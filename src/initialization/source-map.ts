/**
 * The one map from the normalized settings' paths (the native schema's names, which the
 * translators in src/cloudinit report their problems at: `nics[0].mac`, `custom_script`)
 * back to where the caller wrote each setting. The parsers fill it while they read; it is
 * applied once, where a build's problems become the reply (inCallerTerms), so no
 * translator needs to know which form a request came in.
 */
import { AgentError, restated, type Problem } from '../errors.js';
import type { PathStyle, SourcePath } from './source-path.js';

interface Source {
  readonly path: SourcePath;
  /** The value is a document of its own (a custom script): a path below it is a key in it. */
  readonly content: boolean;
}

export class SourceMap {
  private readonly sources = new Map<string, Source>();

  constructor(readonly style: PathStyle) {}

  /** The first place a setting is given is the one its problems are reported at. */
  set(native: string, path: SourcePath, content = false): void {
    if (!this.sources.has(native)) this.sources.set(native, { path, content });
  }

  /**
   * A problem at a native path, at the caller's field instead: the nearest recorded
   * field holding it. Below a content value the rest of the path is a key inside that
   * content (`custom_script.timezone`) and is named in the message.
   */
  restate(problem: Problem): Problem {
    let prefix = problem.path;
    while (prefix !== '') {
      const source = this.sources.get(prefix);
      if (source !== undefined) {
        const inner = problem.path.slice(prefix.length).replace(/^\./, '');
        const message = source.content && inner !== '' ? `at key ${inner} of its content: ${problem.message}` : problem.message;
        return { path: source.path.render(this.style), message };
      }
      prefix = prefix.slice(0, Math.max(0, prefix.lastIndexOf('.'), prefix.lastIndexOf('[')));
    }
    return problem;
  }
}

/**
 * Runs a build of parsed settings; the problems it fails with are restated at the
 * caller's fields. Errors without problems pass through as they are.
 */
export async function inCallerTerms<T>(sources: SourceMap, build: () => Promise<T>): Promise<T> {
  try {
    return await build();
  } catch (err) {
    if (!(err instanceof AgentError) || err.problems.length === 0) throw err;
    throw restated(err, err.problems.map((p) => sources.restate(p)));
  }
}
