/**
 * Initialization values for tests, built directly (not through the parsers): defaults
 * for every required field, overridden by what a test cares about.
 */
import type { Initialization, NicConfiguration, Password, User } from '../../src/initialization/types.js';
import { Redacted } from '../../src/redacted.js';
import type { DomainFacts } from '../../src/cloudinit/types.js';
import type { BuildSource } from '../../src/payload/drive-source.js';

export const DOMAIN_UUID = '6f1c7e2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b';

export function initialization(overrides: Partial<Initialization> = {}): Initialization {
  return {
    users: [],
    dns: { servers: [], search: [] },
    nics: [],
    files: [],
    networkProtocol: 'openstack',
    commands: [],
    ...overrides,
  };
}

/** Parsed settings as a drive source, built by the service's builder as a document would be. */
export function settings(initialization: Initialization): BuildSource {
  return { kind: 'settings', initialization };
}

export function facts(overrides: Partial<DomainFacts> = {}): DomainFacts {
  return { uuid: DOMAIN_UUID, name: 'test-vm', nics: [], ...overrides };
}

export function clearPassword(value: string): Password {
  return { kind: 'clear', value: new Redacted(value) };
}

export function hashedPassword(value: string): Password {
  return { kind: 'hashed', value: new Redacted(value) };
}

export function user(name: string, overrides: Partial<User> = {}): User {
  return { name, authorizedKeys: [], groups: [], sudo: false, ...overrides };
}

export function nic(name: string, overrides: Partial<NicConfiguration> = {}): NicConfiguration {
  return { name, onBoot: true, ipv4: { boot: 'none' }, ipv6: { boot: 'none' }, ...overrides };
}

/** Comparable form: passwords revealed (Redacted hides its value from deepEqual too). */
export function plain(init: Initialization): unknown {
  return JSON.parse(
    JSON.stringify({ ...init, users: init.users.map((u) => ({ ...u, password: u.password === undefined ? undefined : { kind: u.password.kind, value: u.password.value.reveal() } })) }, (_k, v: unknown) =>
      v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v,
    ),
  );
}
