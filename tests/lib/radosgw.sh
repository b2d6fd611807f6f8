# A private Ceph radosgw for the S3 tests: one monitor, one OSD on the in-memory object
# store (memstore) and radosgw's beast frontend, all on 127.0.0.1, on free ports, in
# $T/ceph. Source after functions.sh (it uses $T, CLEANUP_PIDS, wait_for, free_port).
#
#   radosgw_require        install the Debian packages when missing (as root), else skip
#   start_radosgw          start the cluster; sets RGW_URL, RGW_LOG, RGW_PIDS
#   radosgw_user UID       create an S3 user with the key pair $S3_AK / $S3_SK (shell
#                          variables: do not export them, ps e would show them)
#   s3_mb BUCKET, s3_put BUCKET/KEY FILE   with curl (SigV4), key pair $S3_AK/$S3_SK
#   s3_presign PATH EXPIRES [AGE]          a presigned GET URL
#   rgw_requests PATH [METHOD]             requests in radosgw's access log
#   stop_radosgw           stop what start_radosgw started, by PID (also from cleanup)
#
# Facts that cost time to find: without cephx, radosgw needs "ms mon client mode = crc"
# and "ms client mode = crc" or it hangs at start; beast needs tcp_nodelay=1 or small range
# GETs on a kept-alive connection take ~45 ms each.
# shellcheck shell=bash

RADOSGW_PACKAGES=(ceph-mon ceph-osd radosgw ceph-common)
RGW_PIDS=()

radosgw_require() {
	local missing=() p
	for p in "${RADOSGW_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		[ "$(id -u)" = 0 ] || skip_all "radosgw is not installed (${missing[*]}) and installing needs root"
		command -v apt-get >/dev/null || skip_all "radosgw is not installed and there is no apt-get"
		diag "installing ${missing[*]}"
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends "${missing[@]}"; } >"$T/apt.log" 2>&1 ||
			skip_all "cannot install ${missing[*]}: $(tail -1 "$T/apt.log")"
	fi
	command -v radosgw >/dev/null && command -v ceph-mon >/dev/null ||
		skip_all "radosgw or ceph-mon missing after install"
}

# The cluster's configuration, for every ceph command of this instance.
RGW_CONF=
ceph_() { ceph -c "$RGW_CONF" --connect-timeout 20 "$@"; }

# radosgw_daemon NAME COMMAND...: start a daemon in the foreground of a background job.
radosgw_daemon() {
	local name=$1
	shift
	"$@" -f -c "$RGW_CONF" >"$T/ceph/log/$name.out" 2>&1 &
	RGW_PIDS+=($!)
	CLEANUP_PIDS+=($!)
}

start_radosgw() {
	local dir="$T/ceph" fsid mon_port
	radosgw_require
	mkdir -p "$dir/run" "$dir/log" "$dir/mon/ceph-a" "$dir/osd/ceph-0"
	RGW_CONF="$dir/ceph.conf"
	fsid=$(python3 -c 'import uuid; print(uuid.uuid4())')
	mon_port=$(free_port)
	RGW_PORT=$(free_port)
	# Another cluster's monitor on that port would get our ceph commands: refuse.
	if bash -c "exec 3<>/dev/tcp/127.0.0.1/$mon_port" 2>/dev/null; then
		bail "port $mon_port already answers: refusing to start a monitor there"
	fi
	cat >"$RGW_CONF" <<CONF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
mon initial members = a
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
ms client mode = crc
ms bind ipv4 = true
ms bind ipv6 = false
run dir = $dir/run
admin socket = $dir/run/\$name.asok
log file = $dir/log/\$name.log
keyring = $dir/keyring
mon data = $dir/mon/\$cluster-\$id
osd data = $dir/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = 3221225472
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
osd crush chooseleaf type = 0
mon warn on pool no redundancy = false
osd max object size = 134217728
debug ms = 0
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw dns name = localhost
debug rgw = 1
rgw enable usage log = false
CONF
	: >"$dir/keyring"
	monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$dir/monmap" \
		>"$dir/log/monmaptool.out" 2>&1 || bail "monmaptool failed: $(cat "$dir/log/monmaptool.out")"
	ceph-mon -c "$RGW_CONF" --mkfs -i a --monmap "$dir/monmap" >"$dir/log/mon-mkfs.out" 2>&1 ||
		bail "ceph-mon --mkfs failed: $(tail -3 "$dir/log/mon-mkfs.out")"
	radosgw_daemon mon ceph-mon -i a
	wait_for 30 ceph_ -s >/dev/null || bail "the monitor does not answer: $(tail -5 "$dir/log/mon.a.log")"

	local id
	id=$(ceph_ osd create 2>/dev/null) || bail "ceph osd create failed"
	ceph-osd -c "$RGW_CONF" -i "$id" --mkfs >"$dir/log/osd-mkfs.out" 2>&1 ||
		bail "ceph-osd --mkfs failed: $(tail -3 "$dir/log/osd-mkfs.out")"
	radosgw_daemon osd ceph-osd -i "$id"
	wait_for 60 bash -c "ceph -c '$RGW_CONF' osd stat 2>/dev/null | grep -q '1 up'" ||
		bail "the OSD did not come up: $(tail -5 "$dir/log/osd.$id.log")"

	radosgw_daemon rgw radosgw -n client.rgw.a
	RGW_URL="http://127.0.0.1:$RGW_PORT"
	RGW_LOG="$dir/log/client.rgw.a.log"
	wait_for 90 curl -sf -o /dev/null "$RGW_URL/" ||
		bail "radosgw does not answer on $RGW_URL: $(tail -5 "$RGW_LOG")"
}

# radosgw_user UID: create an S3 user with the key pair $S3_AK / $S3_SK. "key create"
# would take the secret in its argv: the key goes in through the user's metadata instead.
radosgw_user() {
	radosgw-admin -c "$RGW_CONF" user create --uid="$1" --display-name="$1" >"$T/ceph/log/user.out" 2>&1 ||
		bail "radosgw-admin user create failed: $(tail -3 "$T/ceph/log/user.out")"
	S3_AK=$S3_AK S3_SK=$S3_SK python3 - "$RGW_CONF" "$1" <<'PY' >"$T/ceph/log/user-key.out" 2>&1 ||
import json, os, subprocess, sys
conf, uid = sys.argv[1:3]
admin = ["radosgw-admin", "-c", conf]
meta = json.loads(subprocess.check_output(admin + ["metadata", "get", "user:" + uid]))
meta["data"]["keys"] = [{"user": uid, "access_key": os.environ["S3_AK"],
                         "secret_key": os.environ["S3_SK"]}]
path = os.path.join(os.path.dirname(conf), "user.json")
with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
    json.dump(meta, f)
try:
    subprocess.check_call(admin + ["metadata", "put", "user:" + uid, "--infile", path])
finally:
    os.unlink(path)
PY
		bail "cannot set the S3 key of $1: $(tail -3 "$T/ceph/log/user-key.out")"
}

# s3_curl METHOD PATH [CURL ARGS...]: a SigV4-signed request to radosgw; the key pair
# reaches curl through its config on stdin, never its argv.
s3_curl() {
	local method=$1 path=$2
	shift 2
	printf 'user = "%s:%s"\n' "$S3_AK" "$S3_SK" |
		curl -K - -sS --aws-sigv4 "aws:amz:${S3_REGION:-us-east-1}:s3" \
			-H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -X "$method" "$@" "$RGW_URL$path"
}

# s3_put BUCKET/KEY FILE
s3_put() {
	s3_curl PUT "/$1" -f -o /dev/null -T "$2"
}

s3_mb() {
	s3_curl PUT "/$1" -f -o /dev/null
}

# s3_presign PATH EXPIRES [AGE]: a SigV4 presigned GET URL for PATH (/BUCKET/KEY), valid
# for EXPIRES seconds from AGE seconds ago (an AGE beyond EXPIRES gives an expired URL).
s3_presign() {
	S3_AK=$S3_AK S3_SK=$S3_SK python3 - "$RGW_URL" "$1" "$2" "${3:-0}" "${S3_REGION:-us-east-1}" <<'PY'
import datetime, hashlib, hmac, os, sys, urllib.parse
base, path, expires, age, region = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
ak, sk = os.environ["S3_AK"], os.environ["S3_SK"]
now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=age)
amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
scope = f"{day}/{region}/s3/aws4_request"
params = {"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Credential": f"{ak}/{scope}",
          "X-Amz-Date": amz_date, "X-Amz-Expires": expires, "X-Amz-SignedHeaders": "host"}
q = lambda v: urllib.parse.quote(v, safe="-_.~")
query = "&".join(f"{q(k)}={q(v)}" for k, v in sorted(params.items()))
host = urllib.parse.urlsplit(base).netloc
creq = "\n".join(["GET", path, query, f"host:{host}\n", "host", "UNSIGNED-PAYLOAD"])
sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
key = ("AWS4" + sk).encode()
for part in (day, region, "s3", "aws4_request"):
    key = hmac.new(key, part.encode(), hashlib.sha256).digest()
sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
print(f"{base}{path}?{query}&X-Amz-Signature={sig}")
PY
}

# Requests (METHOD, default GET) radosgw answered for PATH so far, query string or not
# (its access log, debug rgw = 1).
rgw_requests() {
	grep -c -E "\"${2:-GET} $1[? ]" "$RGW_LOG" 2>/dev/null || true
}

stop_radosgw() {
	local i p
	# radosgw, then the OSD, then the monitor: reverse order of start.
	for ((i = ${#RGW_PIDS[@]} - 1; i >= 0; i--)); do
		p=${RGW_PIDS[$i]}
		kill "$p" 2>/dev/null || continue
		wait_for 15 bash -c "! kill -0 $p" || kill -9 "$p" 2>/dev/null
	done
	RGW_PIDS=()
}
