#!/usr/bin/env bash
# Builds the end-to-end guest (issue 6): Debian 12 from Debian's archive with the
# distribution's own cloud-init and its default configuration, a kernel and initramfs for
# direct kernel boot, and an ext4 root image made without loop mounts (mkfs.ext4 -d).
# Cached in ~/.cache/configdrive-agent/guest/<recipe hash>/ (the hash covers this script,
# the reporter and its unit), rebuilt only when the recipe changes. Prints the cache
# directory on the last line of stdout; size and build time go to stderr.
#
# Facts this recipe encodes (measured on these hosts, see issue 6 and docs/e2e.md):
#  - Debian's cloud kernel has no AHCI driver, but it has ata_piix, sr_mod and isofs:
#    the e2e domains are i440fx, whose CD-ROMs are IDE; it is 100 MB smaller than the
#    generic kernel and boots faster under TCG;
#  - with the stock datasource list ds-identify looks for the config-2 label from a
#    systemd generator, before udev loads modules: the CD-ROM drivers must be loaded by
#    the initramfs or there is no /dev/sr0 yet and cloud-init disables itself;
#  - cloud-init's ENI renderer needs net-tools for the default route, and resolvconf for
#    `dns-nameservers` to reach /etc/resolv.conf;
#  - debootstrap needs python3-cffi-backend listed for cloud-init;
#  - cc_locale's default (en_US.UTF-8) needs the locales package and, on Debian, a locale
#    already generated: Debian's locale-gen ignores the locale cloud-init passes it and
#    only builds what /etc/locale.gen enables, so the image is given the system locale an
#    installer would set (without it cc_locale fails and logs a warning).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
recipe=$(cat "$here/build-image.sh" "$here/report.py" "$here/configdrive-e2e-report.service" | sha256sum | cut -c1-16)
cache="${CONFIGDRIVE_CACHE:-$HOME/.cache/configdrive-agent}/guest/$recipe"
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
packages=(
  linux-image-cloud-amd64 initramfs-tools systemd-sysv udev
  cloud-init python3-cffi-backend
  ifupdown isc-dhcp-client net-tools iproute2 resolvconf
  openssh-server sudo tzdata locales e2fsprogs
)
echo "guest image: debootstrap bookworm (${packages[*]})" >&2
debootstrap --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" bookworm "$work/root" http://deb.debian.org/debian >&2
echo "guest image: debootstrap done after $(( $(date +%s) - start )) s" >&2
r=$work/root
printf '%s\n' ata_piix sr_mod cdrom isofs virtio_pci virtio_blk virtio_scsi virtio_net >> "$r/etc/initramfs-tools/modules"
# Only what the guest's own hardware needs: a smaller initramfs unpacks faster under TCG.
sed -i 's/^MODULES=.*/MODULES=list/' "$r/etc/initramfs-tools/initramfs.conf"
mount -t proc proc "$r/proc"
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
cp -L "$r/vmlinuz" "$cache/vmlinuz"
cp -L "$r/initrd.img" "$cache/initrd.img"
# Documentation, manuals, message translations and the package cache are never read.
rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/* "$r"/usr/share/doc/* \
  "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/locale/*
mkfs.ext4 -q -F -L root -d "$r" "$cache/root.img.tmp" 1G >&2
mv "$cache/root.img.tmp" "$cache/root.img"
summary="built in $(( $(date +%s) - start )) s; root file system $(du -sh "$r" | cut -f1), cache $(du -sh "$cache" | cut -f1) (kernel $(du -h "$cache/vmlinuz" | cut -f1), initramfs $(du -h "$cache/initrd.img" | cut -f1))"
echo "$summary" > "$cache/done"
echo "guest image $summary" >&2
echo "$cache"
