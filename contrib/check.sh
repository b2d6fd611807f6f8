#!/bin/bash
# Build aheadfs and run its test suite twice: a -Werror build, then an ASan+UBSan build.
# Installs missing Debian packages first. Ends with one line: "N passed, N failed[, N skipped]".
#
#   contrib/check.sh            both builds
#   CHECK_SANITIZE=0 contrib/check.sh   skip the sanitizer build
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
top=$(pwd)

packages=(build-essential autoconf automake libtool pkg-config libfuse3-dev fuse3
	libglib2.0-dev libcurl4-openssl-dev libcairo2-dev nginx-light python3 curl e2fsprogs qemu-utils
	util-linux zstd rclone ceph-mon ceph-osd radosgw ceph-common)

install_missing() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "check.sh: installing ${missing[*]}"
	if [ "$(id -u)" != 0 ]; then
		echo "check.sh: not root: cannot install ${missing[*]}" >&2
		return 1
	fi
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "${missing[@]}" >/dev/null
}

# count_results DIR: add the TAP results of a build's test run to the totals.
passed=0 failed=0 skipped=0
count_results() {
	local dir=$1 f p x s
	for f in $(find "$dir" -name '*.trs'); do
		p=$(grep -c '^:test-result: PASS' "$f")
		x=$(grep -c -E '^:test-result: (FAIL|ERROR|XPASS)' "$f")
		s=$(grep -c '^:test-result: SKIP' "$f")
		passed=$((passed + p))
		failed=$((failed + x))
		skipped=$((skipped + s))
	done
}

# run_build NAME CONFIGURE-ARGS...: configure in build-NAME, build, make check.
run_build() {
	local name=$1
	shift
	local dir="$top/build-$name"
	rm -rf "$dir"
	mkdir -p "$dir"
	(cd "$dir" && "$top/configure" -q "$@" >/dev/null) || { failed=$((failed + 1)); echo "check.sh: configure failed ($name)"; return; }
	(cd "$dir" && make -j"$(nproc)" >"$dir/build.log" 2>&1) || {
		tail -30 "$dir/build.log"
		failed=$((failed + 1))
		echo "check.sh: build failed ($name)"
		return
	}
	echo "check.sh: make check ($name)"
	(cd "$dir" && make -j2 check >"$dir/check.log" 2>&1)
	grep -E '^(FAIL|ERROR|XPASS)' "$dir/check.log" | head -40
	for f in $(grep -l -E '^(not ok|Bail out)' $(find "$dir" -name '*.log' ! -name check.log ! -name build.log ! -name config.log) 2>/dev/null); do
		echo "--- $f"
		grep -E '^(not ok|Bail out|#)' "$f" | head -20
	done
	count_results "$dir"
}

install_missing "${packages[@]}" || { echo "0 passed, 1 failed"; exit 1; }
autoreconf -fi >/dev/null 2>&1 || { echo "check.sh: autoreconf failed"; echo "0 passed, 1 failed"; exit 1; }

run_build werror --enable-werror

if [ "${CHECK_SANITIZE:-1}" = 1 ]; then
	san_logs=$(mktemp -d /tmp/aheadfs-sanitizer.XXXXXX)
	# The mount daemon's reports would go to a closed stderr: send them to files.
	export ASAN_OPTIONS="log_path=$san_logs/asan:detect_leaks=1"
	export UBSAN_OPTIONS="log_path=$san_logs/ubsan:print_stacktrace=1:halt_on_error=1"
	san="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
	# Sanitized code runs several times slower: give each test's watchdog more time.
	TEST_TIMEOUT=900 run_build asan --enable-werror CFLAGS="-O1 -g $san" LDFLAGS="$san"
	unset ASAN_OPTIONS UBSAN_OPTIONS
	reports=$(find "$san_logs" -type f 2>/dev/null)
	if [ -n "$reports" ]; then
		echo "check.sh: sanitizer reports:"
		for r in $reports; do head -40 "$r"; done
		failed=$((failed + $(echo "$reports" | wc -l)))
	fi
	rm -rf "$san_logs"
fi

if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
