import { inspect } from 'node:util';

const MASK = '********';

/**
 * A secret that cannot leak by accident: string conversion, JSON.stringify,
 * util.inspect (and so console.log and our logger) all print a mask. Only an explicit
 * reveal() returns the value, so every place that uses a password is easy to find with grep.
 */
export class Redacted<T = string> {
  readonly #value: T;

  constructor(value: T) {
    this.#value = value;
  }

  reveal(): T {
    return this.#value;
  }

  toString(): string {
    return MASK;
  }

  toJSON(): string {
    return MASK;
  }

  [inspect.custom](): string {
    return `Redacted(${MASK})`;
  }

  static readonly mask = MASK;
}

export function isRedacted(value: unknown): value is Redacted<unknown> {
  return value instanceof Redacted;
}
