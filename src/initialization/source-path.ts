/**
 * Where a value sits in the caller's own document. Paths are kept as segments and
 * rendered only when a problem or warning is reported, each input form in its own
 * syntax: XML as an element path from the root element (`/vm/initialization/
 * nic_configurations/nic_configuration[0]/mac/address`, attributes as `@name`), JSON and
 * YAML as a dotted path from the top of the document (`nics[0].mac`). Indexes count from
 * 0 in both, so one document gives the same numbers whatever its form.
 */
export type Segment = { readonly key: string } | { readonly index: number } | { readonly attribute: string };

export type PathStyle = 'xml' | 'tree';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** A hostile key can be megabytes long; a path names it, it need not repeat it. */
function shortened(name: string): string {
  return name.length > 64 ? `${name.slice(0, 61)}...` : name;
}

export class SourcePath {
  static readonly ROOT = new SourcePath([]);

  private constructor(readonly segments: readonly Segment[]) {}

  key(name: string): SourcePath {
    return new SourcePath([...this.segments, { key: name }]);
  }

  item(index: number): SourcePath {
    return new SourcePath([...this.segments, { index }]);
  }

  attribute(name: string): SourcePath {
    return new SourcePath([...this.segments, { attribute: name }]);
  }

  render(style: PathStyle): string {
    return this.segments
      .map((s, i) => {
        if ('index' in s) return `[${String(s.index)}]`;
        if ('attribute' in s) return `/@${shortened(s.attribute)}`;
        if (style === 'xml') return `/${shortened(s.key)}`;
        if (!IDENTIFIER.test(s.key)) return `[${JSON.stringify(shortened(s.key))}]`;
        return i === 0 ? s.key : `.${s.key}`;
      })
      .join('');
  }
}
