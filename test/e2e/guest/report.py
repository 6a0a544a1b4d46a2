#!/usr/bin/python3
"""Runs inside the e2e guest once per boot, after cloud-init: collects this boot's facts
and writes them as one JSON line to the second serial port, then powers the guest off.

It reports facts only; the host decides what they mean. Nothing here reads the config
drive for a fact: what the test learns is what the guest really did with it. The one
exception is a wait: when the drive wrote REBOOT_TRIGGER, the guest stays up after its
report until a CD-ROM holds another instance than cloud-init's (the host changed the
drive of the running guest), and then reboots, as a user would, instead of powering off.
"""
import base64
import glob
import hashlib
import json
import os
import subprocess
import sys
import termios
import time

PORT = "/dev/ttyS1"
MARK = "CONFIGDRIVE-E2E-REPORT"


def run(*argv):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        return {"rc": p.returncode, "out": p.stdout, "err": p.stderr}
    except Exception as e:  # a missing tool is a fact too
        return {"rc": -1, "out": "", "err": repr(e)}


def read(path, binary=False):
    try:
        with open(path, "rb") as f:
            data = f.read()
        return base64.b64encode(data).decode() if binary else data.decode("utf-8", "replace")
    except OSError:
        return None


def cmdline_paths():
    for word in (read("/proc/cmdline") or "").split():
        if word.startswith("configdrive_e2e.paths="):
            return [p for p in word.split("=", 1)[1].split(",") if p]
    return []


def address_set(links):
    """What identifies the addresses (lifetimes count down every second, so they are left out)."""
    return sorted(
        (l.get("ifname"), a.get("family"), a.get("local"), a.get("prefixlen"), bool(a.get("tentative")))
        for l in links for a in l.get("addr_info", [])
    )


def settled_addresses():
    """SLAAC and DHCP finish after network-online: wait until addresses stop changing."""
    links, last, stable_since = [], None, time.monotonic()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        links = json.loads(run("ip", "-j", "addr")["out"] or "[]")
        now = address_set(links)
        if now != last or any(t for *_, t in now):
            last, stable_since = now, time.monotonic()
        elif time.monotonic() - stable_since >= 2:
            break
        time.sleep(0.5)
    return links


def unit_exit_monotonic_us(unit):
    out = run("systemctl", "show", "-p", "ExecMainExitTimestampMonotonic", "--value", unit)["out"].strip()
    return int(out) if out.isdigit() else None


CLOUD_INIT_LOG = "/var/log/cloud-init.log"
BOOT_MARK = "configdrive-e2e: reported boot "


def cloud_init_log_this_boot():
    """What cloud-init logged since the last report: empty on a boot it did not run."""
    text = read(CLOUD_INIT_LOG) or ""
    marker = text.rfind(BOOT_MARK)
    return text if marker < 0 else text[text.find("\n", marker) + 1:]


def mark_cloud_init_log(boot_id):
    with open(CLOUD_INIT_LOG, "a") as f:
        f.write("%s%s\n" % (BOOT_MARK, boot_id))


# Where each network renderer writes, and the rename rules that keep NIC names.
NETWORK_FILES = [
    "/etc/network/interfaces", "/etc/network/interfaces.d/*", "/etc/netplan/*", "/etc/systemd/network/*",
    "/etc/NetworkManager/system-connections/*", "/etc/sysconfig/network-scripts/ifcfg-*",
    "/etc/udev/rules.d/70-persistent-net.rules",
    # what netplan's generator makes of /etc/netplan at every boot, cloud-init or not
    "/run/systemd/network/*",
]


def network_files():
    found = {}
    for pattern in NETWORK_FILES:
        for path in sorted(glob.glob(pattern)):
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    found[path] = hashlib.sha256(f.read()).hexdigest()
    return found


# cloud-init.log lines that say which instance and datasource a boot used.
LIFECYCLE_WORDS = ("new=", "iid-datasource-none", "fallback", "previous iid", "Used Data", "datasource", "No network config applied", "cache invalid")


def homes():
    out = {}
    for line in (read("/etc/passwd") or "").splitlines():
        f = line.split(":")
        if len(f) >= 7 and (f[0] == "root" or int(f[2]) >= 1000) and f[0] != "nobody":
            out[f[0]] = f[5]
    return out


def facts():
    started = time.monotonic()
    started_uptime = float((read("/proc/uptime") or "0").split()[0])
    timings = {}

    def timed(name, fn):
        t = time.monotonic()
        value = fn()
        timings[name] = round(time.monotonic() - t, 3)
        return value

    log = cloud_init_log_this_boot()
    boot_id = (read("/proc/sys/kernel/random/boot_id") or "").strip()
    addresses = timed("settle_addresses", settled_addresses)
    status = timed("cloud_init_status", lambda: run("cloud-init", "status", "--long"))
    block = timed("lsblk_blkid", lambda: (
        json.loads(run("lsblk", "-J", "-o", "NAME,TYPE,LABEL,FSTYPE,RO")["out"] or "{}"),
        {os.path.basename(d): run("blkid", "-o", "export", d)["out"] for d in sorted(glob.glob("/dev/sr*"))},
    ))
    out = {
        "boot_id": boot_id,
        "cmdline": (read("/proc/cmdline") or "").strip(),
        "hostname": run("hostname")["out"].strip(),
        "etc_hostname": (read("/etc/hostname") or "").strip(),
        "etc_hosts": read("/etc/hosts"),
        "passwd": read("/etc/passwd"),
        "shadow": read("/etc/shadow"),
        "group": read("/etc/group"),
        "authorized_keys": {u: read(os.path.join(h, ".ssh/authorized_keys")) for u, h in homes().items()},
        "host_keys": {os.path.basename(p): (read(p) or "").strip() for p in sorted(glob.glob("/etc/ssh/ssh_host_*_key.pub"))},
        "timezone": (read("/etc/timezone") or "").strip(),
        "localtime": os.path.realpath("/etc/localtime"),
        "resolv_conf": read("/etc/resolv.conf"),
        # Which resolver the guest really uses: resolvconf and NetworkManager write
        # /etc/resolv.conf; with systemd-resolved it points at the stub, and the servers
        # networkd gave it are in resolved's own file.
        "resolv_conf_target": os.path.realpath("/etc/resolv.conf"),
        "resolved_upstream": read("/run/systemd/resolve/resolv.conf"),
        "os_release": read("/etc/os-release"),
        "default_locale": read("/etc/default/locale"),
        "locale_conf": read("/etc/locale.conf"),
        "cloud_init_version": run("dpkg-query", "-W", "-f=${Version}", "cloud-init")["out"].strip(),
        "python_version": sys.version.split()[0],
        "addresses": addresses,
        "routes4": json.loads(run("ip", "-j", "-4", "route")["out"] or "[]"),
        "routes6": json.loads(run("ip", "-j", "-6", "route")["out"] or "[]"),
        "block": block[0],
        "cdroms": block[1],
        "paths": {p: {"content": read(p, binary=True), "mode": oct(os.stat(p).st_mode & 0o7777) if os.path.exists(p) else None} for p in cmdline_paths()},
        "cloud_init_status": status,
        "cloud_init_result": read("/run/cloud-init/result.json"),
        "instance_id": (read("/var/lib/cloud/data/instance-id") or "").strip(),
        "cloud_init_ran": log != "",
        "lifecycle_log": [l for l in log.splitlines() if any(w in l for w in LIFECYCLE_WORDS)],
        "ds_identify_log": read("/run/cloud-init/ds-identify.log"),
        "generator_log": read("/run/cloud-init/cloud-init-generator.log"),
        "network_files": network_files(),
        "renderer_log": [l for l in log.splitlines() if "Selected renderer" in l],
        "cloud_init_warnings": [l for l in log.splitlines() if " WARNING" in l or "DEPRECAT" in l],
        "metadata_urls_tried": sum(1 for l in log.splitlines() if "url_helper" in l and "http" in l),
        "cloud_final_done_us": unit_exit_monotonic_us("cloud-final.service"),
        "failed_units": run("systemctl", "--failed", "--plain", "--no-legend")["out"],
        "uptime_s": float((read("/proc/uptime") or "0").split()[0]),
    }
    mark_cloud_init_log(boot_id)
    out["reporter_started_s"] = started_uptime
    out["reporter_s"] = round(time.monotonic() - started, 3)
    out["reporter_timings"] = timings
    return out


REBOOT_TRIGGER = "/etc/configdrive-e2e/reboot-on-new-drive"
CD_MOUNT = "/run/configdrive-e2e-cd"


def drive_instance_ids():
    """The instance-id (meta_data.json's uuid) of each config-2 CD-ROM the guest holds now."""
    ids = set()
    os.makedirs(CD_MOUNT, exist_ok=True)
    for dev in sorted(glob.glob("/dev/sr*")):
        # Opening the device makes the kernel look for a changed medium.
        if run("mount", "-o", "ro", "-t", "iso9660", dev, CD_MOUNT)["rc"] != 0:
            continue
        try:
            with open(os.path.join(CD_MOUNT, "openstack/latest/meta_data.json")) as f:
                ids.add(json.load(f).get("uuid"))
        except (OSError, ValueError):
            pass
        finally:
            run("umount", CD_MOUNT)
    return ids


def reboot_on_new_drive(timeout_s=900):
    """True once a new drive is in and the reboot is asked for; False after the timeout.
    The trigger goes first, so the next boot reports and powers off."""
    current = (read("/var/lib/cloud/data/instance-id") or "").strip()
    os.remove(REBOOT_TRIGGER)
    os.sync()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ids = drive_instance_ids()
        if ids and current not in ids:
            subprocess.run(["systemctl", "reboot", "--force"])
            return True
        time.sleep(1)
    return False


def main():
    try:
        body = facts()
    except Exception as e:  # still report, or the host waits for nothing
        body = {"error": repr(e)}
    line = "\n%s %s\n" % (MARK, base64.b64encode(json.dumps(body).encode()).decode())
    with open(PORT, "w") as port:
        port.write(line)
        port.flush()
        termios.tcdrain(port.fileno())  # a tty cannot be fsynced; this waits for the UART
    os.sync()
    if os.path.exists(REBOOT_TRIGGER) and reboot_on_new_drive():
        return 0
    if "configdrive_e2e.stay" not in (read("/proc/cmdline") or ""):
        # Everything that matters is synced: skip stopping each unit (about 14 s under
        # TCG); systemd still kills processes and remounts the root read-only.
        subprocess.run(["systemctl", "poweroff", "--force"])


if __name__ == "__main__":
    sys.exit(main())
