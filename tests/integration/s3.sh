#!/bin/bash
# S3 against a real Ceph radosgw on 127.0.0.1: SigV4 mounts of s3:// URLs, the cache
# across remounts and overwrites, presigned URLs (no HEAD, expiry), a wrong secret, and
# that the secret shows up nowhere: ps, logs, errors, stats JSON, /proc/mounts, the cache.
: "${TEST_TIMEOUT:=600}" # the watchdog's limit: radosgw alone takes ~20 s to start
. "${top_srcdir:?run from make check, or set top_srcdir and top_builddir}/tests/lib/functions.sh"
. "$top_srcdir/tests/lib/radosgw.sh"
tap_plan 23
start_radosgw

# Made up per run; long enough that a match is never chance. Not exported: ps e would
# show it in the environment of every command of this script.
S3_AK="AKAHEADFS$(python3 -c 'import secrets; print(secrets.token_hex(6).upper())')"
S3_SK="$(python3 -c 'import secrets; print(secrets.token_urlsafe(30))')"
radosgw_user tester
s3_mb images || bail "cannot create the bucket"
make_image "$T/disk.raw" 256
make_image "$T/small.raw" 8
s3_put images/disk.raw "$T/disk.raw" || bail "cannot upload disk.raw"
s3_put images/small.raw "$T/small.raw" || bail "cannot upload small.raw"
diag "radosgw at $RGW_URL, objects uploaded"

umask 077
printf '# test credentials\n[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
	"$S3_AK" "$S3_SK" >"$T/creds"
umask 022
S3OPTS="region=us-east-1,endpoint=$RGW_URL,credentials_file=$T/creds"
EVIDENCE="$T/evidence" # everything the secret must not be in
mkdir -p "$EVIDENCE"
since() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.3f", e - s }'; }
snapshot() { # NAME: ps with environments, the mount table and the stats JSON, now
	ps axeww >"$EVIDENCE/ps.$1"
	cat /proc/mounts >"$EVIDENCE/mounts.$1"
	[ -e "$T/mnt/.aheadfs/stats" ] && cat "$T/mnt/.aheadfs/stats" >"$EVIDENCE/stats.$1"
	return 0
}

# --- SigV4, cold: the whole image, then random reads; curl of the same object for scale.
mount_aheadfs_fg "$T/mnt" "s3://images/disk.raw" -o "$S3OPTS"
check "SigV4 mount of s3://images/disk.raw: size 256 MiB" \
	test "$(stat -c %s "$T/mnt/disk.raw")" = 268435456
start=$(date +%s.%N)
dd if="$T/mnt/disk.raw" of=/dev/null bs=1M status=none
mount_s=$(since "$start")
got=$(sha256sum <"$T/mnt/disk.raw")
check "SigV4: sha256 of the whole image matches" test "$got" = "$(sha256sum <"$T/disk.raw")"
check "SigV4: 1,000 random reads match" \
	python3 "$top_srcdir/tests/helpers/randread.py" "$T/mnt/disk.raw" "$T/disk.raw" 1000
snapshot sigv4
check "SigV4: stats JSON counts range requests and no failures" test "$(json_get "$T/mnt/.aheadfs/stats" \
	's["origin"]["requests"] > 0 and s["origin"]["failures"] == 0 and s["origin"]["bytes"] >= 268435456')" = True
reqs=$(json_get "$T/mnt/.aheadfs/stats" 's["origin"]["requests"]')
conns=$(json_get "$T/mnt/.aheadfs/stats" 's["origin"]["connects"]')
check "SigV4: connections are reused: $reqs requests on $conns connections (at most 8)" \
	test "$conns" -ge 1 -a "$conns" -le 8 -a "$reqs" -gt $((4 * conns))
unmount_aheadfs "$T/mnt"
start=$(date +%s.%N)
s3_curl GET /images/disk.raw -f -o /dev/null
curl_s=$(since "$start")
diag "$(awk -v m="$mount_s" -v c="$curl_s" 'BEGIN { printf "cold sequential 256 MiB: " \
	"mount %.0f MiB/s (dd bs=1M), curl --aws-sigv4 %.0f MiB/s: %.2fx", 256 / m, 256 / c, c / m }')" \
	"(load average $(cut -d' ' -f1 /proc/loadavg))"

# --- Remount: everything from the cache, not one request to the store.
before=$(rgw_requests /images/disk.raw)
mount_aheadfs_fg "$T/mnt" "s3://images/disk.raw" -o "$S3OPTS"
got=$(sha256sum <"$T/mnt/disk.raw")
check "remount: bytes match" test "$got" = "$(sha256sum <"$T/disk.raw")"
check "remount: zero range requests (stats JSON origin.requests)" \
	test "$(json_get "$T/mnt/.aheadfs/stats" 's["origin"]["requests"]')" = 0
unmount_aheadfs "$T/mnt"
after=$(rgw_requests /images/disk.raw)
check "remount: radosgw saw only the probe ($before -> $after GETs)" test "$after" -le $((before + 1))

# --- Overwritten object: a new ETag, the old cache is dropped, the new bytes are served.
dd if=/dev/urandom of="$T/disk.raw" bs=1M count=1 seek=100 conv=notrunc status=none
s3_put images/disk.raw "$T/disk.raw" || bail "cannot overwrite disk.raw"
mount_aheadfs_fg "$T/mnt" "s3://images/disk.raw" -o "$S3OPTS"
check "overwritten: the mount says the old cache was discarded" \
	grep -q "previous cache discarded: cache is for another validator" "$AHEADFS_LOG"
check "overwritten: the new bytes are served" cmp "$T/mnt/disk.raw" "$T/disk.raw"
unmount_aheadfs "$T/mnt"

# --- Credentials from the environment: not visible in ps e or /proc/PID/environ.
rm -rf "$T/cache"
AWS_ACCESS_KEY_ID=$S3_AK AWS_SECRET_ACCESS_KEY=$S3_SK \
	mount_aheadfs_fg "$T/mnt" "s3://images/small.raw" -o "region=us-east-1,endpoint=$RGW_URL,path_style"
check "credentials from AWS_* variables: the object reads" cmp "$T/mnt/small.raw" "$T/small.raw"
snapshot env
check "credentials from AWS_* variables: /proc/PID/environ holds no secret" \
	bash -c "! tr '\\0' '\\n' </proc/$AHEADFS_PID/environ | grep -qF -- '$S3_SK'"
unmount_aheadfs "$T/mnt"

# --- Presigned URL: no credentials, no HEAD; a new signature reuses the cache.
rm -rf "$T/cache"
url=$(s3_presign /images/small.raw 3600)
heads=$(rgw_requests /images/small.raw HEAD)
mount_aheadfs_fg "$T/mnt" "$url"
check "presigned: the object reads (name from the URL's path)" cmp "$T/mnt/small.raw" "$T/small.raw"
check "presigned: no HEAD was sent" test "$(rgw_requests /images/small.raw HEAD)" = "$heads"
snapshot presigned
check "presigned: the mount table shows the URL with its signature redacted" \
	bash -c "grep -F '$T/mnt' /proc/mounts | grep -q 'X-Amz-Signature=REDACTED'"
unmount_aheadfs "$T/mnt"
sleep 1.1 # a new X-Amz-Date, so a new signature
url2=$(s3_presign /images/small.raw 3600)
before=$(rgw_requests /images/small.raw)
mount_aheadfs_fg "$T/mnt" "$url2"
cmp -s "$T/mnt/small.raw" "$T/small.raw"
check "presigned again: same cache, only the probe goes to the store" \
	test "$url2" != "$url" -a "$(rgw_requests /images/small.raw)" = $((before + 1))
unmount_aheadfs "$T/mnt"

# expect_mount_error DESCRIPTION PATTERN ARGS...: mounting fails, stderr matches.
expect_mount_error() {
	local what=$1 pattern=$2
	shift 2
	mkdir -p "$T/m"
	if "$AHEADFS" "$@" "$T/m" 2>"$T/err" >/dev/null; then
		fusermount3 -u "$T/m" 2>/dev/null
		not_ok "$what: mount succeeded"
	elif grep -q -- "$pattern" "$T/err" && ! mountpoint -q "$T/m"; then
		ok "$what ($(head -1 "$T/err"))"
	else
		not_ok "$what: stderr was: $(cat "$T/err")"
	fi
	cat "$T/err" >>"$EVIDENCE/errors"
}

expect_mount_error "expired presigned URL: a clear error" "HTTP 403.*presigned URL expired" \
	-o "cache_dir=$T/cache-expired" "$(s3_presign /images/small.raw 60 7200)"
check "expired presigned URL: nothing cached" test ! -e "$T/cache-expired"

umask 077
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$S3_AK" \
	"$(python3 -c 'import secrets; print(secrets.token_urlsafe(30))')" >"$T/creds-wrong"
umask 022
expect_mount_error "wrong secret: a clear error naming 403" \
	"HTTP 403 Forbidden: SignatureDoesNotMatch" -o "cache_dir=$T/cache-wrong" \
	-o "endpoint=$RGW_URL,credentials_file=$T/creds-wrong" s3://images/disk.raw
check "wrong secret: nothing cached (no cache directory)" test ! -e "$T/cache-wrong"
chmod 644 "$T/creds"
expect_mount_error "credentials file readable by others: refused" \
	"credentials_file: .*/creds may be read or written by others (mode 0644)" \
	-o "cache_dir=$T/cache-wrong,endpoint=$RGW_URL,credentials_file=$T/creds" s3://images/disk.raw
chmod 600 "$T/creds"

# --- The secret, anywhere it could have gone.
cp "$T"/aheadfs.*.log "$EVIDENCE/" 2>/dev/null
leaks=$(grep -rlF -- "$S3_SK" "$EVIDENCE" "$T/cache" 2>/dev/null)
check "the secret appears in no ps output, log, error, stats JSON, mount table or cache file" \
	test -z "$leaks"
[ -n "$leaks" ] && diag "found in: $leaks"
check "the secret was looked for where it would show: ps snapshots and logs exist" \
	test -s "$EVIDENCE/ps.sigv4" -a -s "$EVIDENCE/ps.env" -a -s "$EVIDENCE/stats.sigv4" -a -s "$EVIDENCE/errors"
stop_radosgw
tap_done
