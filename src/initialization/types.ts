/**
 * The one typed, validated form of a VM's first-boot settings. Every input format
 * (oVirt REST XML and JSON, the Python SDK v3 cloud_init shape, the native schema)
 * parses into this; the translators in src/cloudinit read only this.
 *
 * Values here are already normalized: MACs lower-case, netmasks turned into prefix
 * lengths, file contents decoded to bytes, secrets wrapped in Redacted.
 */
import type { Redacted } from '../redacted.js';
import type { SourceMap } from './source-map.js';

export type Ipv4Config =
  | { readonly boot: 'none' }
  | { readonly boot: 'dhcp' }
  | { readonly boot: 'static'; readonly address: string; readonly prefix: number; readonly gateway?: string };

/**
 * oVirt's IPv6 boot protocols. `autoconf` is SLAAC; `dhcp+autoconf` is SLAAC for the
 * address plus DHCPv6 for the rest (stateless); `dhcp` is stateful DHCPv6.
 */
export type Ipv6Config =
  | { readonly boot: 'none' }
  | { readonly boot: 'dhcp' }
  | { readonly boot: 'autoconf' }
  | { readonly boot: 'dhcp+autoconf' }
  | { readonly boot: 'static'; readonly address: string; readonly prefix: number; readonly gateway?: string };

export interface NicConfiguration {
  /** The name the request uses (e.g. `eth0`); also the guest interface name we ask for. */
  readonly name: string;
  /** Lower-case `aa:bb:cc:dd:ee:ff`. Absent: taken from the domain (ethN is the Nth NIC). */
  readonly mac?: string;
  readonly onBoot: boolean;
  readonly ipv4: Ipv4Config;
  readonly ipv6: Ipv6Config;
}

/** A password as the request gave it: in clear (we hash it) or already crypt(3)-hashed. */
export type Password =
  | { readonly kind: 'clear'; readonly value: Redacted<string> }
  | { readonly kind: 'hashed'; readonly value: Redacted<string> };

export interface User {
  readonly name: string;
  readonly password?: Password;
  readonly authorizedKeys: readonly string[];
  /** Supplementary groups; only for users other than root. */
  readonly groups: readonly string[];
  /** Passwordless sudo; only for users other than root. */
  readonly sudo: boolean;
}

export interface InjectedFile {
  /** Absolute path in the guest. */
  readonly path: string;
  readonly content: Uint8Array;
  /** Octal permission bits, e.g. 0o644; absent means cloud-init's default. */
  readonly mode?: number;
  readonly owner?: string;
}

export interface PowerState {
  readonly mode: 'poweroff' | 'reboot' | 'halt';
  /** Minutes to wait; 0 means now. */
  readonly delayMinutes: number;
  readonly message?: string;
}

export interface Initialization {
  readonly hostName?: string;
  /** DNS domain; with hostName it forms the FQDN. */
  readonly domain?: string;
  /** IANA zone name, e.g. `Asia/Jerusalem`. */
  readonly timezone?: string;
  /** Every user to configure, root included; at most one entry per name. */
  readonly users: readonly User[];
  /**
   * Host keys on a new instance: true replaces them, false keeps them, absent follows the
   * agent's rule (cloud-init's default on a domain's first instance, kept on later ones).
   */
  readonly regenerateSshKeys?: boolean;
  readonly dns: { readonly servers: readonly string[]; readonly search: readonly string[] };
  readonly nics: readonly NicConfiguration[];
  readonly files: readonly InjectedFile[];
  /** A cloud-config fragment or a script (`#!`); the translator decides which. */
  readonly customScript?: string;
  /** OpenStack network_data.json (default) or the legacy ENI file. */
  readonly networkProtocol: 'openstack' | 'eni';
  readonly systemLocale?: string;
  /** Shell commands run once at the end of first boot (cloud-init runcmd). */
  readonly commands: readonly string[];
  readonly powerState?: PowerState;
  /** The caller's own instance-id, in place of the agent's `<uuid>-g<N>` (src/payload/instance-lineage.ts). */
  readonly instanceId?: string;
}

/** What a parser returns: the settings, and notes for the caller that are not errors. */
export interface ParsedInitialization {
  readonly initialization: Initialization;
  /** e.g. how an oVirt quirk was interpreted; shown by the CLI, logged by the daemon. */
  readonly warnings: readonly string[];
  /** Where each setting was in the caller's document, for problems found after parsing (inCallerTerms). */
  readonly sources: SourceMap;
}
