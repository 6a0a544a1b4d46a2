#!/usr/bin/env bash
# Builds the root file system the system journey boots with systemd-nspawn: Debian 12
# with systemd as PID 1, libvirtd with the QEMU driver, QEMU itself, and this host's
# Node 20 (NodeSource's .deb, repacked from the host with dpkg-repack: Debian 12 only has
# Node 18). The package under test is not in it: the journey installs it on a copy.
#
#   build-root.sh [DEPENDS]
#
# DEPENDS is the package's Depends field (dpkg-deb --field X.deb Depends): apt-get
# satisfy installs exactly that, so the journey's dpkg -i needs nothing from the network
# and a dependency the field forgets is missing in the container as on a user's machine.
# Cached in ~/.cache/configdrive-agent/system-root/<recipe hash>/root (the hash covers
# this script, DEPENDS and the host's nodejs version), rebuilt only when one changes.
# Prints the cache directory on the last line of stdout; sizes and build time go to stderr.
#
# Choices this recipe encodes:
#  - debootstrap's minbase, then apt-get --no-install-recommends: QEMU's recommends alone
#    (GUI, OVMF, block drivers) would double the root, and nothing here uses them;
#  - bookworm-updates and bookworm-security are enabled so libvirt and QEMU are the same
#    builds as on the host, where the rest of the suite runs them;
#  - users `operator` and `stranger` exist already; `operator` joins the group the
#    package creates only after the package is installed, so that is the journey's job.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
node_version=$(dpkg-query -W -f='${Version}' nodejs 2>/dev/null || true)
if [ -z "$node_version" ]; then
  echo "build-root: this host has no nodejs package to repack (see README: NodeSource's nodejs 20)" >&2
  exit 1
fi
depends=${1:-}
recipe=$({ cat "$here/build-root.sh"; echo "nodejs $node_version"; echo "depends $depends"; } | sha256sum | cut -c1-16)
cache="${CONFIGDRIVE_CACHE:-$HOME/.cache/configdrive-agent}/system-root/$recipe"
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ -f "$cache/done" ]; then
  echo "system root cached in $cache: $(cat "$cache/done")" >&2
  echo "$cache"
  exit 0
fi

for tool in debootstrap dpkg-repack systemd-nspawn; do
  command -v "$tool" >/dev/null || { echo "build-root: $tool is missing; run tools/setup-host" >&2; exit 1; }
done

start=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/tmp}/configdrive-sysroot-XXXXXX")
r="$cache/root.partial"
cleanup() {
  for m in dev/pts sys proc; do umount "$r/$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
# A build killed half-way may have left its mounts: never rm -rf through them.
for m in dev/pts sys proc; do umount "$r/$m" 2>/dev/null || true; done
rm -rf "$r" "$cache/root"

(cd "$work" && dpkg-repack nodejs >&2)
node_deb=$(ls "$work"/nodejs_*.deb)

echo "system root: debootstrap bookworm (minbase, systemd, dbus)" >&2
debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,passwd,adduser bookworm "$r" http://deb.debian.org/debian >&2
echo "system root: debootstrap done after $(( $(date +%s) - start )) s" >&2

cat > "$r/etc/apt/sources.list" <<'EOF'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
# Package scripts must not start anything: nothing runs in this chroot but apt.
printf '#!/bin/sh\nexit 101\n' > "$r/usr/sbin/policy-rc.d"
chmod 755 "$r/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$r/etc/resolv.conf"
mount -t proc proc "$r/proc"
mount -t sysfs sysfs "$r/sys"
mount -t devpts devpts "$r/dev/pts"
cp "$node_deb" "$r/tmp/nodejs.deb"
export DEBIAN_FRONTEND=noninteractive
chroot "$r" apt-get update -qq >&2
chroot "$r" apt-get install -y -qq --no-install-recommends \
  libvirt-daemon-system libvirt-clients qemu-system-x86 dmidecode /tmp/nodejs.deb >&2
rm -f "$r/tmp/nodejs.deb"
if [ -n "$depends" ]; then
  echo "system root: the package's dependencies: $depends" >&2
  chroot "$r" apt-get satisfy -y -qq --no-install-recommends "$depends" >&2
fi
for m in dev/pts sys proc; do umount "$r/$m"; done
rm -f "$r/usr/sbin/policy-rc.d" "$r/etc/resolv.conf"

# Debian's base-passwd already has a group named operator (gid 37): the users get `users`.
chroot "$r" useradd --create-home --shell /bin/bash --no-user-group --gid users operator
chroot "$r" useradd --create-home --shell /bin/bash --no-user-group --gid users stranger
echo configdrive-journey > "$r/etc/hostname"
# The container has a network namespace of its own with loopback only (--private-network):
# libvirt's default NAT network would only fail to start there, and degrade the boot.
rm -f "$r/etc/libvirt/qemu/networks/autostart/default.xml"
# libvirt-guests would ask each guest to shut down at poweroff and wait 5 minutes for
# firmware-only guests that never will; the journey's guests are disposable.
ln -sf /dev/null "$r/etc/systemd/system/libvirt-guests.service"
# On hosts with cgroup v1 (these have the hybrid hierarchy) nspawn mounts the controllers
# read-only, and libvirt refuses to start a domain it cannot put in its cpu, memory and
# devices cgroups ("Failed to create v1 controller cpu for group: Read-only file
# system"). With no controllers listed, QEMU starts and stays in libvirtd's cgroup.
echo 'cgroup_controllers = [ ]' >> "$r/etc/libvirt/qemu.conf"

qemu_kib=$(chroot "$r" dpkg-query -W -f='${Installed-Size}\n' qemu-system-x86 qemu-system-common qemu-system-data seabios ipxe-qemu | awk '{s += $1} END {print s}')
# Documentation, manuals, translations and the package cache are never read.
rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/*.bin "$r"/var/lib/apt/lists/* \
  "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/locale/*
mv "$r" "$cache/root"
summary="built in $(( $(date +%s) - start )) s; root $(du -sh "$cache/root" | cut -f1) ($(chroot "$cache/root" dpkg-query -W -f='.\n' | wc -l) packages; QEMU and its firmware $(( qemu_kib / 1024 )) MiB; nodejs $node_version; for Depends: ${depends:-none given})"
echo "$summary" > "$cache/done"
echo "system root $summary" >&2
echo "$cache"
