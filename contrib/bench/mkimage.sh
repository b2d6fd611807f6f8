#!/bin/bash
# mkimage.sh [OUT.raw]: build the benchmark's VM image, a real Debian 12
# minimal system (systemd, linux-image-amd64, python3) on a ~2 GiB sparse ext4
# raw image, from Debian packages with debootstrap.
#
# The guest boots with root=/dev/vda on a read-only disk and writes to its
# serial console (ttyS0):
#   AHEADFS-MARK-READY uptime=S   once multi-user.target is reached
#   AHEADFS-MARK-APP uptime=S     after a small python3 application (a handful
#                                 of stdlib imports and an sqlite3 database)
# and then powers off.  No getty, no network.
#
# Next to OUT.raw it writes OUT.vmlinuz and OUT.initrd (for qemu -kernel and
# -initrd) and OUT.raw.ok (the recipe version); if those exist and match, it
# does nothing, since a build takes minutes.  Default OUT is
# /var/tmp/aheadfs-bench/debian.raw.  Needs root, debootstrap, e2fsprogs.
#
# The Debian mirror is taken from this machine's apt sources at run time.
set -euo pipefail

# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

RECIPE=5
OUT=${1:-$BENCH_IMAGE}
SIZE=${AHEADFS_BENCH_IMAGE_SIZE:-2G}
SUITE=${AHEADFS_BENCH_SUITE:-bookworm}
KERNEL=$(kernel_for "$OUT")
INITRD=$(initrd_for "$OUT")
STAMP=$OUT.ok

case $OUT in
*.raw) ;;
*) die "output must end in .raw: $OUT" ;;
esac

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$RECIPE" ] &&
	[ -f "$OUT" ] && [ -f "$KERNEL" ] && [ -f "$INITRD" ]; then
	log "image up to date: $OUT"
	exit 0
fi

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, mount)"
requires debootstrap mkfs.ext4 e2fsck fstrim mount umount chroot

# apt_mirror SUITE: the first URI in this machine's apt sources that serves
# SUITE's main component (one-line .list and deb822 .sources formats).
apt_mirror() {
	local suite=$1 f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk -v s="$suite" '
			$1 == "deb" {
				i = 2
				if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
				if ($(i + 1) == s) for (j = i + 2; j <= NF; j++)
					if ($j == "main") { print $i; exit }
			}' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk -v s="$suite" '
			function flush() {
				if (uri != "" && suite_ok && main_ok && type_ok) { print uri; exit }
				uri = ""; suite_ok = main_ok = type_ok = 0
			}
			/^[ \t]*$/ { flush(); next }
			/^Types:/ { for (i = 2; i <= NF; i++) if ($i == "deb") type_ok = 1 }
			/^URIs:/ { uri = $2 }
			/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) suite_ok = 1 }
			/^Components:/ { for (i = 2; i <= NF; i++) if ($i == "main") main_ok = 1 }
			/^Enabled: *no/ { type_ok = 0; uri = "" }
			END { flush() }' "$f"
	done
}

MIRROR=${AHEADFS_BENCH_MIRROR:-$(apt_mirror "$SUITE" | head -n 1)}
[ -n "$MIRROR" ] || die "no apt source for $SUITE main found in /etc/apt"
log "building $OUT from $SUITE (mirror from apt sources: $MIRROR)"

mkdir -p "$(dirname "$OUT")"
TMP=$OUT.tmp
MNT=$(mktemp -d /tmp/aheadfs-mkimage.XXXXXX)
MOUNTED=()

cleanup() {
	local rc=$? i
	for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
		umount "${MOUNTED[i]}" 2>/dev/null || umount -l "${MOUNTED[i]}" 2>/dev/null || true
	done
	rmdir "$MNT" 2>/dev/null || true
	if [ "$rc" != 0 ]; then
		rm -f "$TMP" "$TMP.vmlinuz" "$TMP.initrd"
		log "build failed (rc=$rc); partial files removed"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -f "$TMP" "$STAMP"
truncate -s "$SIZE" "$TMP"
mkfs.ext4 -q -F -L aheadfs-root -m 0 "$TMP"
mount -o loop "$TMP" "$MNT"
MOUNTED+=("$MNT")

PKGS=systemd,systemd-sysv,udev,dbus,kmod,e2fsprogs,initramfs-tools,linux-image-amd64,python3
debootstrap --variant=minbase --include="$PKGS" "$SUITE" "$MNT" "$MIRROR"

# --- configuration -----------------------------------------------------------
# A small initrd with only what a virtio disk and ext4 need: faster to load
# and unpack under TCG than MODULES=most.
cat >"$MNT/etc/initramfs-tools/conf.d/aheadfs-bench.conf" <<'EOF'
MODULES=list
EOF
cat >>"$MNT/etc/initramfs-tools/modules" <<'EOF'
virtio_pci
virtio_blk
virtio_scsi
sd_mod
ext4
EOF

cat >"$MNT/etc/fstab" <<'EOF'
# The benchmark disk is attached read-only: never written, never fsck'd.
/dev/vda	/	ext4	ro,noatime	0	0
EOF
echo aheadfs-bench >"$MNT/etc/hostname"
# A fixed machine id: the root is read-only, so no "first boot" every boot.
echo 6168656164667362656e636800000001 >"$MNT/etc/machine-id"
mkdir -p "$MNT/etc/systemd/journald.conf.d"
cat >"$MNT/etc/systemd/journald.conf.d/aheadfs-bench.conf" <<'EOF'
[Journal]
Storage=volatile
EOF

# Nothing listens on a console: the benchmark only reads the markers.  No
# logind: nobody logs in, and on a read-only root it fails and restarts.
for u in getty@tty1.service serial-getty@ttyS0.service console-getty.service \
	getty.target apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
	e2scrub_reap.service fstrim.timer systemd-timesyncd.service \
	systemd-logind.service; do
	ln -sf /dev/null "$MNT/etc/systemd/system/$u"
done

# The benchmark target: multi-user, then the ready marker, then the app.
cat >"$MNT/etc/systemd/system/aheadfs-bench.target" <<'EOF'
[Unit]
Description=aheadfs benchmark: multi-user, then the application
Requires=multi-user.target
After=multi-user.target
Wants=aheadfs-ready.service aheadfs-app.service
AllowIsolate=yes
EOF
cat >"$MNT/etc/systemd/system/aheadfs-ready.service" <<'EOF'
[Unit]
Description=aheadfs benchmark: ready marker
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'read up idle </proc/uptime; echo "AHEADFS-MARK-READY uptime=$$up" >/dev/ttyS0'
EOF
cat >"$MNT/usr/local/bin/aheadfs-app" <<'EOF'
#!/usr/bin/python3
# The benchmark's "application": start python3, import a handful of stdlib
# modules, and touch an sqlite3 database (on tmpfs: the root is read-only).
import json, sqlite3, csv, hashlib, email.parser, http.client

db = sqlite3.connect("/run/aheadfs-app.db")
db.execute("create table t (k integer primary key, v text)")
db.executemany("insert into t (v) values (?)", ((json.dumps({"i": i}),) for i in range(1000)))
db.commit()
n = db.execute("select count(*) from t").fetchone()[0]
print("aheadfs-app rows=%d sha=%s" % (n, hashlib.sha256(str(n).encode()).hexdigest()[:8]))
EOF
chmod 755 "$MNT/usr/local/bin/aheadfs-app"
cat >"$MNT/etc/systemd/system/aheadfs-app.service" <<'EOF'
[Unit]
Description=aheadfs benchmark: application, marker, power off
After=aheadfs-ready.service multi-user.target
SuccessAction=poweroff
FailureAction=poweroff

[Service]
Type=oneshot
ExecStart=/usr/local/bin/aheadfs-app
ExecStart=/bin/sh -c 'read up idle </proc/uptime; echo "AHEADFS-MARK-APP uptime=$$up" >/dev/ttyS0'
EOF
ln -sf /etc/systemd/system/aheadfs-bench.target "$MNT/etc/systemd/system/default.target"

mount -t proc proc "$MNT/proc"
MOUNTED+=("$MNT/proc")
mount -t sysfs sysfs "$MNT/sys"
MOUNTED+=("$MNT/sys")
mount --bind /dev "$MNT/dev"
MOUNTED+=("$MNT/dev")
chroot "$MNT" update-initramfs -u -k all
chroot "$MNT" apt-get clean
rm -rf "$MNT"/var/lib/apt/lists/* "$MNT"/var/cache/apt/*.bin "$MNT"/var/log/*.log
# The image has no network: drop the build-time mirror from it.
: >"$MNT/etc/apt/sources.list"

cp "$(readlink -f "$MNT/vmlinuz")" "$TMP.vmlinuz"
cp "$(readlink -f "$MNT/initrd.img")" "$TMP.initrd"

umount "$MNT/dev" "$MNT/sys" "$MNT/proc"
umount "$MNT"
MOUNTED=()
# Give freed blocks (the downloaded packages) back as holes, so the image
# stays sparse.  On a fresh mount: blocks freed in the mount that freed them
# are not trimmed until the journal lets go of them.
mount -o loop "$TMP" "$MNT"
MOUNTED+=("$MNT")
fstrim "$MNT"
df -h "$MNT" >&2
umount "$MNT"
MOUNTED=()
e2fsck -fn "$TMP" >/dev/null

mv "$TMP.vmlinuz" "$KERNEL"
mv "$TMP.initrd" "$INITRD"
mv "$TMP" "$OUT"
echo "$RECIPE" >"$STAMP"
log "built $OUT ($(du -h "$OUT" | cut -f1) allocated of $SIZE), $KERNEL, $INITRD"
