#!/bin/bash
# loopapp.sh [--timeout S] FILE
#
# Workload 2, an application on a loop mount (no VM): attach FILE (the
# benchmark image, mkimage.sh) read-only to a loop device, mount its ext4
# read-only without replaying the journal, and run a fixed set of programs
# chrooted in it:
#   python3   the guest application's imports and an in-memory sqlite3 db
#   dpkg -l   reads the dpkg status database
#   ls -lR    walks /usr/share/doc and /usr/lib (directories and inodes)
#   cat       reads every file under /usr/bin and /usr/lib/python3.11/encodings
# Prints `loop_s=TOTAL python_s=.. dpkg_s=.. ls_s=.. cat_s=..` (monotonic
# clock, from losetup to the last program's exit, unmount not included).
# Always unmounts and detaches, on every exit path.  Needs root.
set -euo pipefail

# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

TIMEOUT=300
if [ "${1:-}" = --timeout ]; then
	TIMEOUT=$2
	shift 2
fi
[ $# -eq 1 ] || die "usage: $0 [--timeout S] FILE"
FILE=$1
[ -f "$FILE" ] || die "no such file: $FILE"
[ "$(id -u)" = 0 ] || die "must run as root (losetup, mount, chroot)"
requires losetup mount umount chroot timeout

MNT=$(mktemp -d /tmp/aheadfs-loopapp.XXXXXX)
LOOP=
cleanup() {
	if is_mounted "$MNT"; then
		umount "$MNT" 2>/dev/null || umount -l "$MNT" || true
	fi
	if [ -n "$LOOP" ]; then
		losetup -d "$LOOP" 2>/dev/null || true
	fi
	rmdir "$MNT" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# step NAME CMD...: run CMD chrooted in the image, bounded, output discarded;
# sets STEP_S.
step() {
	local name=$1 t0
	shift
	t0=$(now)
	if ! timeout --kill-after=5 "$TIMEOUT" chroot "$MNT" "$@" >/dev/null 2>"$MNT.err"; then
		sed "s/^/$name: /" "$MNT.err" >&2
		rm -f "$MNT.err"
		die "$name failed"
	fi
	rm -f "$MNT.err"
	STEP_S=$(elapsed "$t0")
}

PY='import json, sqlite3, csv, hashlib, email.parser, http.client
db = sqlite3.connect(":memory:")
db.execute("create table t (k integer primary key, v text)")
db.executemany("insert into t (v) values (?)", ((json.dumps({"i": i}),) for i in range(1000)))
print(db.execute("select count(*) from t").fetchone()[0])'

T0=$(now)
LOOP=$(losetup -r -f --show "$FILE")
mount -t ext4 -o ro,noload "$LOOP" "$MNT"
step python /usr/bin/python3 -c "$PY"
PYTHON_S=$STEP_S
step dpkg /usr/bin/dpkg -l
DPKG_S=$STEP_S
step ls /bin/ls -lR /usr/share/doc /usr/lib
LS_S=$STEP_S
step cat /bin/sh -c 'cat /usr/bin/* /usr/lib/python3.11/encodings/* 2>/dev/null; true'
CAT_S=$STEP_S
TOTAL=$(elapsed "$T0")
echo "loop_s=$TOTAL python_s=$PYTHON_S dpkg_s=$DPKG_S ls_s=$LS_S cat_s=$CAT_S"
