/**
 * Fault injection on the real daemon, real libvirt and real QEMU: configdrived is
 * SIGKILLed at seeded pseudo-random points of VM.start, Payload.attach (shut off and
 * running) and Payload.detach (running and shut off), started again on the same state
 * directory and URI, and then the agent's record, libvirt's live and persistent
 * definitions with our metadata, and the files QEMU really has open must name the same
 * drive (test/helpers/three-views.ts), the store must hold no image nobody names, and a
 * new change on the domain must succeed.
 *
 * Where a kill lands is read, not assumed: the record file at the moment of the kill
 * says whether the change was still before its journal entry (building), journaled
 * (libvirt being changed), or committed, and the reply says whether it had finished.
 * The delays are drawn up to a little over the flow's last measured duration (set again
 * by every reply that beats its kill), so they spread over the whole request whatever
 * this machine's speed.
 *
 * FAULT_KILLS (default 40, shared by the hosts) kills, FAULT_SEED replays a run's delays; both are printed.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { prepareEmbedRoot } from '../../src/libvirt/embed.js';
import type { RpcClient } from '../../src/rpc/client.js';
import { connectWhenReady, startDaemon, type DaemonProcess } from '../helpers/daemon.js';
import { domainXml } from '../helpers/libvirt.js';
import { startPrivateLibvirtd } from '../helpers/private-libvirtd.js';
import { definition, disagreements, duplicateHolds, leakedHolds, readViews, strayFiles, type LibvirtFiles, type Views } from '../helpers/three-views.js';
import { seededRandom } from '../helpers/seeded-random.js';

const KILLS = Number(process.env['FAULT_KILLS'] ?? 40);
const SEED = Number(process.env['FAULT_SEED'] ?? Math.floor(Math.random() * 2 ** 31));


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type FlowName = 'VM.start' | 'attach, shut off' | 'attach, running' | 'detach, running' | 'detach, shut off';

interface Flow {
  readonly name: FlowName;
  readonly domain: string;
  readonly machine: 'pc' | 'q35';
}

const FLOWS: readonly Flow[] = [
  { name: 'VM.start', domain: 'fk-start', machine: 'q35' },
  { name: 'attach, shut off', domain: 'fk-attach-off', machine: 'pc' },
  { name: 'attach, running', domain: 'fk-attach-run', machine: 'q35' },
  { name: 'detach, running', domain: 'fk-detach-run', machine: 'pc' },
  { name: 'detach, shut off', domain: 'fk-detach-off', machine: 'q35' },
];

/** Where a kill landed, from the record file at that moment and whether the reply had come. */
type Phase = 'before the journal (build, checks)' | 'journaled (libvirt changing)' | 'committed, before the reply' | 'after the reply';

const HOSTS: readonly { readonly title: string; open(dir: string): Promise<{ uri: string; files: LibvirtFiles; stop(): Promise<void> }> }[] = [
  {
    title: 'qemu:///embed',
    open: async (dir) => {
      const root = join(dir, 'embed');
      return { uri: await prepareEmbedRoot(root), files: { configDir: join(root, 'etc', 'qemu'), runDir: join(root, 'run', 'qemu') }, stop: async () => undefined };
    },
  },
  {
    title: 'libvirtd, QEMU as libvirt-qemu',
    open: async (dir) => {
      // QEMU is another user here: it must pass through the test's directory to the images.
      const { chmodSync } = await import('node:fs');
      chmodSync(dir, 0o711);
      const daemon = await startPrivateLibvirtd();
      return { uri: daemon.uri, files: { configDir: join(daemon.dir, 'etc', 'qemu'), runDir: join(daemon.dir, 'run', 'qemu') }, stop: () => daemon.stop() };
    },
  },
];

/** Each host gets its share of the kills; FAULT_HOSTS=embed runs the embedded one only. */
const hosts = process.env['FAULT_HOSTS'] === 'embed' ? HOSTS.slice(0, 1) : HOSTS;

describe('SIGKILL of configdrived during VM.start, Payload.attach and Payload.detach, then a restart (real QEMU)', function () {
  this.timeout(600_000);

  for (const [hostIndex, host] of hosts.entries()) it(`leaves the record, libvirt's live and persistent definitions and QEMU's open files naming the same drive, no orphan image, and the daemon serving (${host.title})`, async () => {
    const kills = Math.ceil(KILLS / hosts.length);
    const seed = SEED + hostIndex;
    const random = seededRandom(seed);
    console.log(`      ${host.title}: ${String(kills)} kills, FAULT_SEED=${String(SEED)} (FAULT_KILLS=${String(KILLS)})`);
    const dir = mkdtempSync(join(tmpdir(), 'fault-kill-'));
    const lv = await host.open(dir);
    const state = join(dir, 'state');
    const sock = join(dir, 'd.sock');
    const args = ['--config', join(dir, 'none.yaml'), '--uri', lv.uri, '--socket', sock, '--state-dir', state];
    let daemon: DaemonProcess | undefined;
    let client: RpcClient | undefined;
    try {
      mkdirSync(join(dir, 'xml'));
      for (const f of FLOWS) {
        writeFileSync(join(dir, 'xml', `${f.domain}.xml`), domainXml({ name: f.domain, machine: f.machine, macs: ['52:54:00:fa:00:01'] }));
        const r = await execa('virsh', ['-q', '-c', lv.uri, `define ${join(dir, 'xml', `${f.domain}.xml`)}`], { reject: false });
        assert.equal(r.exitCode, 0, r.stderr);
      }
      // virsh on an embedded root must be done with it before the daemon opens it.
      const uuids = new Map<string, string>();
      for (const f of FLOWS) uuids.set(f.domain, (await execa('virsh', ['-q', '-c', lv.uri, `domuuid ${f.domain}`])).stdout.trim());

      let content = 0;
      const init = () => ({ configdrive: 1, hostname: `fault-${String(content++)}` });
      const running = (name: string) => existsSync(join(lv.files.runDir, `${name}.xml`));
      const statusText = (name: string) => {
        try {
          return readFileSync(join(lv.files.runDir, `${name}.xml`), 'utf8');
        } catch {
          return '';
        }
      };
      const recordFile = (name: string) => {
        const path = join(state, 'domains', `${uuids.get(name)!}.json`);
        return existsSync(path) ? readFileSync(path, 'utf8') : '';
      };

      const start = async () => {
        daemon = startDaemon(args);
        client = await connectWhenReady(daemon, sock);
      };
      /** Stops the domain's QEMU as an operator's kill would, and waits until libvirt has seen it go. */
      const shutOff = async (name: string) => {
        if (!running(name)) return;
        const pid = Number(readFileSync(join(lv.files.runDir, `${name}.pid`), 'utf8').trim());
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          // already gone: libvirt only has to notice
        }
        for (let i = 0; i < 400 && running(name); i++) await sleep(25);
        assert.equal(running(name), false, `libvirt still has a status file for ${name} 10 s after its QEMU got SIGTERM`);
      };
      const views = (name: string) => readViews(client!, state, lv.files, name, uuids.get(name)!);
      const hasDrive = async (name: string) => (await client!.call<{ payload: unknown }>('Payload.get', { domain: name })).payload !== null;

      /** Puts the flow's domain in the state its request needs; each step must succeed. */
      const prepare = async (f: Flow) => {
        if (f.name === 'VM.start' || f.name === 'attach, shut off') return shutOff(f.domain);
        if (f.name === 'detach, shut off') {
          if (!(await hasDrive(f.domain))) await client!.call('Payload.attach', { domain: f.domain, initialization: init() });
          return;
        }
        if (!running(f.domain) || !(await hasDrive(f.domain))) {
          await shutOff(f.domain);
          await client!.call('VM.start', { domain: f.domain, initialization: init() });
        }
      };
      const request = (f: Flow): [string, Record<string, unknown>] => {
        if (f.name === 'VM.start') return ['VM.start', { domain: f.domain, initialization: init() }];
        if (f.name.startsWith('attach')) return ['Payload.attach', { domain: f.domain, initialization: init() }];
        return ['Payload.detach', { domain: f.domain }];
      };
      /** After the checks: the change a user would make next, which must succeed. */
      const followUp = async (f: Flow): Promise<string> => {
        if (f.name === 'attach, shut off' || f.name === 'detach, shut off') {
          await client!.call('Payload.attach', { domain: f.domain, initialization: init() });
          return 'Payload.attach';
        }
        if (f.name === 'attach, running' && running(f.domain) && (await hasDrive(f.domain))) {
          await client!.call('Payload.attach', { domain: f.domain, initialization: init() });
          return 'Payload.attach';
        }
        await shutOff(f.domain);
        await client!.call('VM.start', { domain: f.domain, initialization: init() });
        return 'VM.start';
      };
      // Images the store kept because a QEMU held them through a node libvirt lost: allowed
      // until the next start, which must have removed each one no QEMU holds any more.
      let retained = new Set<string>();
      const checkAll = async (when: string, afterRestart: boolean) => {
        // A libvirtd outlives the agent and finishes the job a killed request started
        // (a VM.start's start): judged once it is done. A job still held after 10 s is a
        // wedged domain, reported by the views.
        for (let i = 0; i < 200 && FLOWS.some((f) => /<job\b[^>]*\basync='(?!none')/.test(statusText(f.domain))); i++) await sleep(50);
        const all: Views[] = [];
        for (const f of FLOWS) {
          const v = await views(f.domain);
          all.push(v);
          const problems = disagreements(v, state, { leakedNodes: true });
          assert.deepEqual(problems, [], `${when}, ${f.domain}: the views disagree:\n${JSON.stringify(v, null, 2)}\ndaemon log:\n${daemon!.log().slice(-3000)}`);
        }
        const leakedNow = all.flatMap(leakedHolds);
        const stray = strayFiles(state, all.flatMap((v) => (v.get.payload === null ? [] : [v.get.payload.path])), afterRestart ? leakedNow : [...leakedNow, ...retained]);
        retained = new Set(afterRestart ? leakedNow : [...retained, ...leakedNow]);
        assert.deepEqual(stray, [], `${when}: files in the store that no record names`);
      };

      await start();
      const lastMs = new Map<FlowName, number>();
      // Two measured, uninterrupted runs of each flow (the second with the build threads
      // warm, as later): the first delays' range. Then each reply that beats its kill
      // sets it again, so the range follows this machine's speed.
      for (const f of [...FLOWS, ...FLOWS]) {
        await prepare(f);
        const [method, params] = request(f);
        const t0 = performance.now();
        await client!.call(method, params).catch((err: unknown) => assert.ok(f.name === 'detach, running', `${f.name}: ${String(err)}`));
        lastMs.set(f.name, performance.now() - t0);
      }
      await checkAll('before the first kill', true);

      const counts = new Map<string, number>();
      const outcomes = new Map<string, number>();
      // VM.start cut off between the paused start and the resume: pinned by vm-start-paused.test.ts.
      const leftPaused = new Map<string, number>();
      // QEMU holding the drive's file through two descriptors after the restart.
      const doubleHeld = new Map<string, number>();
      // QEMU holding an image the live definition does not name (kept on disk while it does).
      const leaked = new Map<string, number>();
      const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
      const startedAt = performance.now();
      for (let i = 0; i < kills; i++) {
        const f = FLOWS[i % FLOWS.length]!;
        await prepare(f);
        const before = recordFile(f.domain);
        const delay = Math.round(random() * 1.3 * Math.max(lastMs.get(f.name)!, 5));
        const [method, params] = request(f);
        let replied: 'ok' | 'error' | undefined;
        const t0 = performance.now();
        const call = client!.call(method, params).then(
          () => (replied = 'ok'),
          (err: unknown) => (replied ??= String(err).includes('closed the connection') ? undefined : 'error'),
        );
        await sleep(delay);
        const atKill = recordFile(f.domain);
        const repliedAtKill = replied;
        daemon!.process.kill('SIGKILL');
        await daemon!.process;
        await call;
        client!.close();
        const pending = atKill === '' ? undefined : (JSON.parse(atKill) as { pending?: { op: string } }).pending;
        const phase: Phase =
          repliedAtKill !== undefined ? 'after the reply' : pending !== undefined ? 'journaled (libvirt changing)' : atKill === before ? 'before the journal (build, checks)' : 'committed, before the reply';
        bump(counts, phase);
        bump(outcomes, `${f.name}: ${phase}${repliedAtKill === 'error' ? ' (refused)' : ''}`);
        if (repliedAtKill !== undefined) lastMs.set(f.name, performance.now() - t0);

        await start();
        const when = `kill ${String(i + 1)} (${f.name}, ${String(delay)} ms, ${phase})`;
        await checkAll(`after the restart of ${when}`, true);
        const settled = await views(f.domain);
        if (duplicateHolds(settled) > 0) bump(doubleHeld, phase);
        if (leakedHolds(settled).length > 0) bump(leaked, phase);
        const liveState = settled.live?.state ?? 'shut off';
        // A VM.start cut off is either done (running) or undone (shut off, as it was).
        const expected = f.name === 'VM.start' ? ['running', 'shut off'] : [f.name.endsWith('shut off') ? 'shut off' : 'running'];
        if (liveState === 'paused' && f.name === 'VM.start') bump(leftPaused, phase);
        else assert.ok(expected.includes(liveState), `${when}: ${f.domain} is ${liveState} after the restart`);
        if (f.name === 'VM.start') bump(outcomes, `VM.start: ${phase}: ${liveState} after the restart`);
        const next = await followUp(f).catch((err: unknown) => assert.fail(`${when}: the next change on ${f.domain} failed: ${String(err)}\n${daemon!.log().slice(-3000)}`));
        await checkAll(`after the ${next} that followed ${when}`, false);
      }
      const seconds = (performance.now() - startedAt) / 1000;
      // The files the checks read are libvirt's own view: with the daemon stopped, virsh
      // (libvirt itself, reading them back) must show the same disks and metadata.
      const last = await Promise.all(FLOWS.map((f) => views(f.domain)));
      client!.close();
      daemon!.process.kill('SIGTERM');
      assert.equal((await daemon!.process).exitCode, 0);
      daemon = undefined;
      for (const v of last) {
        for (const [flag, seen] of [['--inactive', v.persistent], ['', v.live]] as const) {
          if (seen === null) continue;
          // virsh on an embed root with running guests sometimes crashes while exiting
          // (libvirt 9.0), after printing the XML: judged by what it printed.
          const dump = await execa('virsh', ['-q', '-c', lv.uri, `dumpxml ${flag} ${v.name}`], { reject: false });
          const shown = definition(String(dump.stdout));
          assert.deepEqual({ disks: shown.disks, mark: shown.mark }, { disks: seen.disks, mark: seen.mark }, `virsh dumpxml ${flag} ${v.name} differs from libvirt's file`);
        }
      }
      assert.equal([...counts.values()].reduce((a, b) => a + b, 0), kills);
      console.log(`      ${host.title}: ${String(kills)} kills in ${seconds.toFixed(0)} s (seed ${String(seed)}): ${[...counts].map(([k, n]) => `${String(n)} ${k}`).join(', ')}; all consistent`);
      for (const [k, n] of [...outcomes].sort()) console.log(`        ${k}: ${String(n)}`);
      if (doubleHeld.size > 0) console.log(`        QEMU held the drive's file twice after the restart (a block node left by libvirt's cut-off media change): ${[...doubleHeld].map(([k, n]) => `${String(n)} ${k}`).join(', ')}`);
      if (leaked.size > 0) console.log(`        QEMU held an image libvirt no longer names after the restart (kept, not deleted): ${[...leaked].map(([k, n]) => `${String(n)} ${k}`).join(', ')}`);
      if (leftPaused.size > 0) console.log(`        left paused by a VM.start cut off before its resume (a known defect): ${[...leftPaused].map(([k, n]) => `${String(n)} ${k}`).join(', ')}`);
    } finally {
      client?.close();
      if (daemon !== undefined) {
        daemon.process.kill('SIGTERM');
        await daemon.process;
      }
      await execa('sh', ['-c', `for d in ${FLOWS.map((f) => f.domain).join(' ')}; do virsh -q -c "$1" destroy "$d"; done`, 'sh', lv.uri], { reject: false });
      await lv.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
