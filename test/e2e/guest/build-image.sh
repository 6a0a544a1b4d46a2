#!/usr/bin/env bash
# Builds an end-to-end guest (issues 6 and 13): one Debian suite from Debian's archive with
# the distribution's own cloud-init in its default configuration, a kernel and initramfs
# for direct kernel boot, and an ext4 root image made without loop mounts (mkfs.ext4 -d).
#   build-image.sh [SUITE]     SUITE: bullseye, bookworm (the default), trixie, forky
# Cached in ~/.cache/configdrive-agent/guest/<suite>-<recipe hash>/ (the hash covers this
# script, the suite, the reporter and its unit), rebuilt only when the recipe changes.
# Prints the cache directory on the last line of stdout; size and build time go to stderr.
#
# Facts this recipe encodes (measured on these hosts, see issues 6 and 13, docs/e2e.md):
#  - Debian's cloud kernel has no AHCI driver, but it has ata_piix, sr_mod and isofs:
#    the e2e domains are i440fx, whose CD-ROMs are IDE; it is 100 MB smaller than the
#    generic kernel and boots faster under TCG;
#  - with the stock datasource list ds-identify looks for the config-2 label from a
#    systemd generator, before udev loads modules: the CD-ROM drivers must be loaded by
#    the initramfs or there is no /dev/sr0 yet and cloud-init disables itself;
#  - no suite's cloud.cfg names network renderers, so cloud-init takes the first
#    available of its DEFAULT_PRIORITY (eni, sysconfig, netplan, network-manager, ...,
#    networkd; 20.4 has no network-manager or networkd renderer): the packages of each
#    suite below decide the renderer, and nothing else is configured;
#  - cc_locale's default (en_US.UTF-8) needs the locales package and, on Debian, a locale
#    already generated: Debian's locale-gen ignores the locale cloud-init passes it and
#    only builds what /etc/locale.gen enables, so the image is given the system locale an
#    installer would set (without it cc_locale fails and logs a warning).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
suite=${1:-bookworm}
# What every suite gets: a kernel and init, cloud-init, and what a cloud image has for
# logging in and for the settings the drive carries.
kernel=(linux-image-cloud-amd64 initramfs-tools)
common=(
  systemd-sysv udev cloud-init iproute2 openssh-server sudo tzdata locales e2fsprogs
)
# Per suite, the network stack Debian's own cloud images of that suite use (forky: the
# RHEL and Fedora one), and why each package is there.
script=
late=()
case "$suite" in
  bullseye | bookworm)
    # cloud-init 20.4.1 / 22.4.2, ENI renderer (ifupdown): it needs net-tools for the
    # default route and resolvconf for `dns-nameservers` to reach /etc/resolv.conf;
    # debootstrap needs python3-cffi-backend listed for cloud-init.
    network=(python3-cffi-backend ifupdown isc-dhcp-client net-tools resolvconf)
    ;;
  trixie)
    # cloud-init 25.1.4, netplan renderer (netplan.io, the first available of
    # cloud-init's priority without ifupdown) with systemd-networkd (part of systemd in
    # trixie) behind it, and systemd-resolved, which takes the servers netplan gives
    # networkd (netplan.io only suggests it). systemd-resolved fails to configure inside
    # debootstrap's base configuration and is installed by apt-get afterwards.
    network=(netplan.io)
    late=(systemd-resolved)
    ;;
  forky)
    # cloud-init 26.2, network-manager renderer: neither ifupdown nor netplan, and
    # NetworkManager enabled (cloud-init's test for the renderer is nmcli plus an
    # enabled NetworkManager.service). bookworm's debootstrap has no forky script.
    # forky's kernel depends on `dracut | initramfs-tools`, and debootstrap unpacks
    # both, which conflict: the kernel comes afterwards from apt-get, which takes the
    # initramfs-tools asked for (the MODULES=list initramfs below). network-manager
    # fails to configure inside debootstrap's base configuration: apt-get too. As on
    # bookworm, python3-cryptography (which cloud-init's dependencies pull in) needs the
    # virtual python3-cffi-backend-api-min, which debootstrap does not resolve: listed.
    network=(python3-cffi-backend)
    late=("${kernel[@]}" network-manager)
    kernel=()
    script=/usr/share/debootstrap/scripts/sid
    ;;
  *)
    echo "build-image.sh: unknown suite '$suite' (bullseye, bookworm, trixie, forky)" >&2
    exit 2
    ;;
esac
recipe=$( (echo "$suite"; cat "$here/build-image.sh" "$here/report.py" "$here/configdrive-e2e-report.service") | sha256sum | cut -c1-16)
cache="${CONFIGDRIVE_CACHE:-$HOME/.cache/configdrive-agent}/guest/$suite-$recipe"
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ -f "$cache/done" ]; then
  echo "guest image cached in $cache: $(cat "$cache/done")" >&2
  echo "$cache"
  exit 0
fi
start=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/tmp}/configdrive-guest-XXXXXX")
trap 'umount "$work/root/proc" 2>/dev/null || true; rm -rf "$work"' EXIT
# Stopped (tools/test-all stops a build when an earlier part fails): clean up all the same.
trap 'exit 143' TERM INT
packages=("${kernel[@]}" "${common[@]}" "${network[@]}")
echo "guest image: debootstrap $suite (${packages[*]})" >&2
debootstrap --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" "$suite" "$work/root" http://deb.debian.org/debian $script >&2
echo "guest image: debootstrap done after $(( $(date +%s) - start )) s" >&2
r=$work/root
mount -t proc proc "$r/proc"
# Nothing after this needs the network: systemd-resolved makes the chroot's
# /etc/resolv.conf its stub, which resolves nothing here.
if [ ${#late[@]} -gt 0 ]; then
  # Package scripts must not start services inside the build host's chroot.
  printf '#!/bin/sh\nexit 101\n' > "$r/usr/sbin/policy-rc.d" && chmod 755 "$r/usr/sbin/policy-rc.d"
  DEBIAN_FRONTEND=noninteractive chroot "$r" apt-get install -y -q --no-install-recommends "${late[@]}" >&2
  rm -f "$r/usr/sbin/policy-rc.d"
fi
printf '%s\n' ata_piix sr_mod cdrom isofs virtio_pci virtio_blk virtio_scsi virtio_net >> "$r/etc/initramfs-tools/modules"
# Only what the guest's own hardware needs: a smaller initramfs unpacks faster under TCG.
sed -i 's/^MODULES=.*/MODULES=list/' "$r/etc/initramfs-tools/initramfs.conf"
chroot "$r" update-initramfs -u -k all >&2
sed -i 's/^# *\(en_US.UTF-8 UTF-8\)/\1/' "$r/etc/locale.gen"
chroot "$r" locale-gen >&2
chroot "$r" update-locale LANG=en_US.UTF-8
umount "$r/proc"
install -D -m 0755 "$here/report.py" "$r/usr/local/lib/configdrive-e2e/report.py"
install -D -m 0644 "$here/configdrive-e2e-report.service" "$r/etc/systemd/system/configdrive-e2e-report.service"
ln -sf /etc/systemd/system/configdrive-e2e-report.service "$r/etc/systemd/system/multi-user.target.wants/configdrive-e2e-report.service"
echo '/dev/vda / ext4 defaults 0 1' > "$r/etc/fstab"
echo 'configdrive-guest' > "$r/etc/hostname"
# The host keys the image ships with: the e2e suite checks they were replaced.
mkdir -p "$cache/image-host-keys"
cp "$r"/etc/ssh/ssh_host_*_key.pub "$cache/image-host-keys/"
# By /boot, not the /vmlinuz links: whether linux-base makes those depends on the suite.
kernel=$(find "$r/boot" -name 'vmlinuz-*' | sort -V | tail -n 1)
cp "$kernel" "$cache/vmlinuz"
cp "$r/boot/initrd.img-${kernel##*/vmlinuz-}" "$cache/initrd.img"
# Documentation, manuals, message translations and the package cache are never read.
rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/* "$r"/usr/share/doc/* \
  "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/locale/*
mkfs.ext4 -q -F -L root -d "$r" "$cache/root.img.tmp" 1G >&2
mv "$cache/root.img.tmp" "$cache/root.img"
summary="$suite, cloud-init $(chroot "$r" dpkg-query -W -f='${Version}' cloud-init 2>/dev/null || echo '?'), built in $(( $(date +%s) - start )) s; root file system $(du -sh "$r" | cut -f1), cache $(du -sh "$cache" | cut -f1) (kernel $(du -h "$cache/vmlinuz" | cut -f1), initramfs $(du -h "$cache/initrd.img" | cut -f1))"
echo "$summary" > "$cache/done"
echo "guest image $summary" >&2
echo "$cache"
