/**
 * Collects settings from wherever a format puts them into one Initialization. oVirt can
 * give one user's password and keys in three places (root_password, users, authorized
 * keys); they are merged per user name here, and contradictions are problems.
 */
import { Redacted } from '../redacted.js';
import type { Doc } from './doc.js';
import type { Initialization, InjectedFile, NicConfiguration, Password, PowerState } from './types.js';

interface UserDraft {
  password?: Password;
  passwordPath?: string;
  keys: string[];
  groups: string[];
  sudo: boolean;
}

const HASH = /^\$(?:5|6|y|gy|7|2[abxy])\$/;

export class InitializationBuilder {
  hostName?: string;
  domain?: string;
  timezone?: string;
  regenerateSshKeys: boolean | undefined;
  readonly dnsServers: string[] = [];
  readonly dnsSearch: string[] = [];
  readonly nics: NicConfiguration[] = [];
  readonly files: InjectedFile[] = [];
  customScript?: string;
  networkProtocol: 'openstack' | 'eni' = 'openstack';
  systemLocale?: string;
  readonly commands: string[] = [];
  powerState?: PowerState;
  instanceId?: string;
  private readonly users = new Map<string, UserDraft>();
  private readonly origins = new Map<string, string>();

  constructor(private readonly doc: Doc) {}

  /** Sets a single-valued field once; a second, different value is a contradiction. */
  set<K extends 'hostName' | 'domain' | 'timezone' | 'customScript' | 'systemLocale' | 'instanceId'>(field: K, value: string | undefined, path: string): void {
    if (value === undefined) return;
    const previous = this[field];
    if (previous !== undefined && previous !== value) {
      this.doc.problem(path, `contradicts ${this.origins.get(field) ?? 'an earlier field'}, which says ${JSON.stringify(previous)}`);
      return;
    }
    this[field] = value;
    this.origins.set(field, path);
  }

  private user(name: string): UserDraft {
    let u = this.users.get(name);
    if (u === undefined) {
      u = { keys: [], groups: [], sudo: false };
      this.users.set(name, u);
    }
    return u;
  }

  declareUser(name: string): void {
    this.user(name);
  }

  /**
   * Wraps the password the moment it is read. A crypt(3) hash ($6$, $y$, ...) is kept as
   * a hash; MD5-crypt ($1$) is refused as too weak; anything else is a clear password
   * the agent hashes. Error messages never include the value.
   */
  password(name: string, value: string | undefined, path: string): void {
    if (value === undefined) return;
    if (value === '') {
      this.doc.problem(path, 'is empty');
      return;
    }
    if (value.includes('\0')) {
      this.doc.problem(path, 'contains a NUL character');
      return;
    }
    // Nobody can type one at a login prompt, and the value would set a password other
    // than the one the caller sees.
    if (/[\r\n]/.test(value)) {
      this.doc.problem(path, 'contains a line break');
      return;
    }
    let password: Password;
    if (value.startsWith('$1$')) {
      this.doc.problem(path, 'is an MD5-crypt hash, which is too weak; give a SHA-512 ($6$) or yescrypt ($y$) hash, or the clear password');
      return;
    } else if (HASH.test(value)) {
      if (/[\s:]/.test(value)) {
        this.doc.problem(path, 'looks like a crypt(3) hash but contains spaces or colons');
        return;
      }
      password = { kind: 'hashed', value: new Redacted(value) };
    } else {
      password = { kind: 'clear', value: new Redacted(value) };
    }
    const u = this.user(name);
    if (u.password !== undefined && u.password.value.reveal() !== value) {
      this.doc.problem(path, `gives user ${name} a different password than ${u.passwordPath ?? 'an earlier field'}`);
      return;
    }
    u.password = password;
    u.passwordPath = path;
  }

  keys(name: string, keys: readonly string[]): void {
    const u = this.user(name);
    for (const k of keys) if (!u.keys.includes(k)) u.keys.push(k);
  }

  groups(name: string, groups: readonly string[], sudo: boolean): void {
    const u = this.user(name);
    u.groups.push(...groups.filter((g) => !u.groups.includes(g)));
    u.sudo ||= sudo;
  }

  build(): Initialization {
    const users = [...this.users].map(([name, u]) => ({
      name,
      ...(u.password === undefined ? {} : { password: u.password }),
      authorizedKeys: u.keys,
      groups: u.groups,
      sudo: u.sudo,
    }));
    return {
      ...(this.hostName === undefined ? {} : { hostName: this.hostName }),
      ...(this.domain === undefined ? {} : { domain: this.domain }),
      ...(this.timezone === undefined ? {} : { timezone: this.timezone }),
      users,
      ...(this.regenerateSshKeys === undefined ? {} : { regenerateSshKeys: this.regenerateSshKeys }),
      dns: { servers: this.dnsServers, search: this.dnsSearch },
      nics: this.nics,
      files: this.files,
      ...(this.customScript === undefined ? {} : { customScript: this.customScript }),
      networkProtocol: this.networkProtocol,
      ...(this.systemLocale === undefined ? {} : { systemLocale: this.systemLocale }),
      commands: this.commands,
      ...(this.powerState === undefined ? {} : { powerState: this.powerState }),
      ...(this.instanceId === undefined ? {} : { instanceId: this.instanceId }),
    };
  }
}
