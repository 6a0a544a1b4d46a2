/**
 * Collects settings from wherever a format puts them into one Initialization. oVirt can
 * give one user's password and keys in three places (root_password, users, authorized
 * keys); they are merged per user name here, and contradictions are problems. Where each
 * setting came from goes into the document's SourceMap, under its native path.
 */
import { Redacted } from '../redacted.js';
import type { Doc } from './doc.js';
import { SourceMap } from './source-map.js';
import type { SourcePath } from './source-path.js';
import type { Initialization, InjectedFile, NicConfiguration, Password, PowerState } from './types.js';

interface UserDraft {
  path: SourcePath;
  password?: Password;
  passwordPath?: SourcePath;
  keysPath?: SourcePath;
  keys: string[];
  groups: string[];
  sudo: boolean;
}

type SingleField = 'hostName' | 'domain' | 'timezone' | 'customScript' | 'systemLocale' | 'instanceId';

/** Each single-valued field's name in the native schema, which translators report at. */
const NATIVE_NAME: Readonly<Record<SingleField, string>> = {
  hostName: 'hostname',
  domain: 'domain',
  timezone: 'timezone',
  customScript: 'custom_script',
  systemLocale: 'locale',
  instanceId: 'instance_id',
};

/** Where a NIC's parts were given; absent parts were not. */
export interface NicSources {
  readonly nic: SourcePath;
  readonly name: SourcePath;
  readonly mac?: SourcePath | undefined;
  readonly ipv4?: SourcePath | undefined;
  readonly ipv6?: SourcePath | undefined;
}

const HASH = /^\$(?:5|6|y|gy|7|2[abxy])\$/;

export class InitializationBuilder {
  hostName?: string;
  domain?: string;
  timezone?: string;
  regenerateSshKeys?: boolean;
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
  readonly sources: SourceMap;
  private readonly users = new Map<string, UserDraft>();
  private readonly origins = new Map<SingleField, SourcePath>();

  constructor(private readonly doc: Doc) {
    this.sources = new SourceMap(doc.style);
  }

  /**
   * Sets a single-valued field once; a second, different value is a contradiction. A
   * custom script is never quoted back: it can be long, and hold anything.
   */
  set(field: SingleField, value: string | undefined, path: SourcePath): void {
    if (value === undefined) return;
    const previous = this[field];
    const origin = this.origins.get(field);
    if (previous !== undefined && previous !== value) {
      const said = field === 'customScript' ? 'which is the user data already' : `which says ${JSON.stringify(previous)}`;
      this.doc.problem(path, `contradicts ${origin === undefined ? 'an earlier field' : this.doc.show(origin)}, ${said}`);
      return;
    }
    this[field] = value;
    if (origin === undefined) this.origins.set(field, path);
    this.sources.set(NATIVE_NAME[field], path, field === 'customScript');
  }

  /** Where a field was set, when it was. */
  origin(field: SingleField): SourcePath | undefined {
    return this.origins.get(field);
  }

  private user(name: string, path: SourcePath): UserDraft {
    let u = this.users.get(name);
    if (u === undefined) {
      u = { path, keys: [], groups: [], sudo: false };
      this.users.set(name, u);
    }
    return u;
  }

  declareUser(name: string, path: SourcePath): void {
    this.user(name, path);
  }

  addNic(nic: NicConfiguration, from: NicSources): void {
    const at = `nics[${String(this.nics.length)}]`;
    this.nics.push(nic);
    this.sources.set(at, from.nic);
    this.sources.set(`${at}.name`, from.name);
    if (from.mac !== undefined) this.sources.set(`${at}.mac`, from.mac);
    if (from.ipv4 !== undefined) this.sources.set(`${at}.ipv4`, from.ipv4);
    if (from.ipv6 !== undefined) this.sources.set(`${at}.ipv6`, from.ipv6);
  }

  addFile(file: InjectedFile, path: SourcePath): void {
    const twice = this.files.findIndex((f) => f.path === file.path);
    if (twice >= 0) {
      this.doc.problem(path, `writes ${file.path} a second time`);
      return;
    }
    this.sources.set(`files[${String(this.files.length)}]`, path);
    this.files.push(file);
  }

  /**
   * Wraps the password the moment it is read. A crypt(3) hash ($6$, $y$, ...) is kept as
   * a hash; MD5-crypt ($1$) is refused as too weak; anything else is a clear password
   * the agent hashes. Error messages never include the value.
   */
  password(name: string, value: string | undefined, path: SourcePath): void {
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
    const u = this.user(name, path);
    if (u.password !== undefined && u.password.value.reveal() !== value) {
      this.doc.problem(path, `gives user ${name} a different password than ${u.passwordPath === undefined ? 'an earlier field' : this.doc.show(u.passwordPath)}`);
      return;
    }
    u.password = password;
    u.passwordPath = path;
  }

  /** Host keys regenerated or kept: given twice, the two must agree. */
  regenerate(value: boolean | undefined, path: SourcePath): void {
    if (value === undefined) return;
    if (this.regenerateSshKeys !== undefined && this.regenerateSshKeys !== value) {
      this.doc.problem(path, `contradicts an earlier regenerate_ssh_keys, which says ${String(this.regenerateSshKeys)}`);
      return;
    }
    this.regenerateSshKeys = value;
    this.sources.set('regenerate_ssh_keys', path);
  }

  keys(name: string, keys: readonly string[], path: SourcePath): void {
    const u = this.user(name, path);
    if (keys.length > 0) u.keysPath ??= path;
    for (const k of keys) if (!u.keys.includes(k)) u.keys.push(k);
  }

  groups(name: string, groups: readonly string[], sudo: boolean, path: SourcePath): void {
    const u = this.user(name, path);
    u.groups.push(...groups.filter((g) => !u.groups.includes(g)));
    u.sudo ||= sudo;
  }

  build(): Initialization {
    [...this.users.values()].forEach((u, i) => {
      this.sources.set(`users[${String(i)}]`, u.path);
      if (u.passwordPath !== undefined) this.sources.set(`users[${String(i)}].password`, u.passwordPath);
      if (u.keysPath !== undefined) this.sources.set(`users[${String(i)}].ssh_authorized_keys`, u.keysPath);
    });
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
