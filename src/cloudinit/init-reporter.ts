/**
 * The guest half of VM.initialized, carried by the drive alone: openstack/latest/
 * vendor_data.json as `{"cloud-init": "#cloud-config ..."}` (NoCloud: the same
 * cloud-config as `vendor-data`), so the user's own user data stays as written. Its one `bootcmd` entry runs on every boot cloud-init runs (a boot
 * with the drive: without it ds-identify disables cloud-init, so nothing reports) and
 * queues a transient oneshot unit ordered after cloud-final.service, which writes one
 * bounded JSON line into the agent's virtio-serial port. Transient, so that nothing is
 * left in the guest's /etc and a later drive-less boot has no unit at all; queued with
 * --no-block, because bootcmd runs inside cloud-init.service, which cloud-final follows.
 * Never `cloud-init status --wait`: the unit reads result.json and status.json, which
 * exist once cloud-final has finished.
 */
import { createHmac } from 'node:crypto';
import { dumpCloudConfig } from './yaml.js';

export const VENDOR_DATA_PATH = 'openstack/latest/vendor_data.json';

/** The virtio-serial port's name: the guest sees /dev/virtio-ports/<name>. */
export const REPORT_PORT = 'org.configdrive-agent.0';

/** The transient unit's name in the guest. */
export const REPORT_UNIT = 'configdrive-agent-report';

/** Bytes of a report line at most, newline excluded; the host refuses longer ones. */
export const MAX_REPORT_BYTES = 8192;

/**
 * The drive's nonce: HMAC of the domain and instance under the daemon's own key. Equal
 * settings give equal bytes (the lineage compares drives by content), a new instance or
 * another domain a new nonce, and nobody without the key, which never leaves the host's
 * state directory, can compute one from the public instance-id.
 */
export function reportNonce(key: string, uuid: string, instanceId: string): string {
  return createHmac('sha256', Buffer.from(key, 'hex')).update(`configdrive-agent report\n${uuid}\n${instanceId}`).digest('hex').slice(0, 32);
}

/**
 * Runs in the guest with the drive's instance-id and nonce as arguments. Everything it
 * sends is cut to fit: at most 16 errors of 500 characters, and the line under
 * MAX_REPORT_BYTES. A guest without the port (a domain whose channel was removed) sends
 * nothing. The write blocks until the host side is connected, so a daemon restarting
 * meanwhile still gets the line; the unit's start timeout ends the wait.
 */
export const REPORTER_PY = `import json, os, sys, time
PORT = "/dev/virtio-ports/${REPORT_PORT}"
LIMIT = ${String(MAX_REPORT_BYTES)}
def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except Exception:
        return None
def text(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except Exception:
        return ""
drive_iid, nonce = sys.argv[1], sys.argv[2]
status = (load("/run/cloud-init/status.json") or {}).get("v1") or {}
result = load("/run/cloud-init/result.json")
errors = []
def add(e):
    e = str(e)[:500]
    if e not in errors:
        errors.append(e)
if not isinstance(result, dict) or not isinstance(result.get("v1"), dict):
    add("cloud-init wrote no /run/cloud-init/result.json")
else:
    for e in result["v1"].get("errors") or []:
        add(e)
stages = {}
for name in ("init-local", "init", "modules-config", "modules-final"):
    s = status.get(name)
    if isinstance(s, dict):
        num = lambda v: v if isinstance(v, (int, float)) and not isinstance(v, bool) else None
        stages[name] = {"start": num(s.get("start")), "finished": num(s.get("finished"))}
        for e in s.get("errors") or []:
            add(e)
errors = errors[:16]
body = {"v": 1, "instanceId": text("/var/lib/cloud/data/instance-id") or drive_iid, "nonce": nonce,
        "status": "error" if errors else "done", "errors": errors, "stages": stages,
        "bootId": text("/proc/sys/kernel/random/boot_id"), "sentAt": 9999999999.999}
line = json.dumps(body, separators=(",", ":"))
while len(line.encode()) > LIMIT and body["errors"]:
    body["errors"].pop()
    line = json.dumps(body, separators=(",", ":"))
if os.path.exists(PORT):
    fd = os.open(PORT, os.O_WRONLY)
    try:
        body["sentAt"] = round(time.time(), 3)
        line = json.dumps(body, separators=(",", ":"))
        os.write(fd, (line + "\\n").encode())
    finally:
        os.close(fd)
`;

/**
 * The reporter as a cloud-config document: NoCloud's vendor-data as it is (that
 * datasource hands the file to cloud-init's user-data processor unchanged, on 20.4 to
 * 26.x), ConfigDrive's wrapped in JSON (buildVendorData).
 */
export function reporterCloudConfig(instanceId: string, nonce: string): string {
  const bootcmd = [
    'systemd-run',
    '--quiet',
    '--no-block',
    '--collect',
    `--unit=${REPORT_UNIT}`,
    '--property=After=cloud-final.service',
    '--property=Type=oneshot',
    '--property=TimeoutStartSec=900',
    'python3',
    '-c',
    REPORTER_PY,
    instanceId,
    nonce,
  ];
  return dumpCloudConfig({ bootcmd: [bootcmd] });
}

/** The vendor_data.json for a drive of `instanceId`: never empty, always a JSON object. */
export function buildVendorData(instanceId: string, nonce: string): string {
  return `${JSON.stringify({ 'cloud-init': reporterCloudConfig(instanceId, nonce) })}\n`;
}
