#!/usr/bin/env bash
# aheadfsctl replay end to end: generated traces in, one JSON object out; bad input is a
# clear one-line error and a non-zero exit. No mount, no network: the link is simulated.
. "${top_srcdir:?}/tests/lib/functions.sh"
requires python3
CTL="$top_builddir/aheadfsctl"
[ -x "$CTL" ] || bail "$CTL is not built"

tap_plan 17

# A boot-like trace: 300 scattered 64K reads 5 ms apart, a few writes, a header line.
python3 - "$T/boot.csv" <<'PY'
import sys
bs = 65536
with open(sys.argv[1], "w") as f:
    f.write("time_s,offset,length,op\n")
    for i in range(300):
        f.write("%.6f,%d,%d,R\n" % (i * 0.005, (i * 7919 % 3000) * bs, bs))
        if i % 50 == 0:
            f.write("%.6f,%d,%d,W\n" % (i * 0.005, 5000 * bs, 4096))
PY

# json_check FILE PYTHON-EXPRESSION: the expression, with d the parsed object, is true.
json_check() {
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if eval("(" + sys.argv[2] + ")") else 1)' "$1" "$2"
}

"$CTL" replay --model=none --no-background "$T/boot.csv" >"$T/none.json" 2>"$T/none.err"
check "replay --model=none exits 0" test $? = 0
check "one JSON object with the documented keys" json_check "$T/none.json" \
	'all(k in d for k in ("model", "ops", "demand_blocks", "demand_misses", "late", "hits",
	 "prefetched_blocks", "prefetched_used_blocks", "accuracy", "coverage", "wasted_bytes",
	 "bytes_fetched", "requests", "stall_s", "elapsed_s", "tiers", "link", "confidence",
	 "ns_per_observe", "ns_per_predict")) and
	 all(set(d["tiers"][t]) == {"blocks", "bytes", "used_blocks"}
	     for t in ("critical", "predictive", "background"))'
check "300 reads, writes skipped, none prefetches nothing" json_check "$T/none.json" \
	'd["ops"] == 300 and d["writes_skipped"] == 6 and d["prefetched_blocks"] == 0 and
	 d["accuracy"] == 0 and d["demand_misses"] == 300'
# Each miss: 20 ms to the first byte, then 64 KiB at 25 MB/s.
check "none: stall is misses x (RTT + transfer)" json_check "$T/none.json" \
	'abs(d["stall_s"] - 300 * (0.020 + 65536 / 25e6)) < 1e-3'

"$CTL" replay --model=hybrid --no-background --train="$T/boot.csv" "$T/boot.csv" \
	>"$T/hybrid.json"
check "learned boot: accuracy >= 0.8, coverage >= 0.9" json_check "$T/hybrid.json" \
	'd["accuracy"] >= 0.8 and d["coverage"] >= 0.9 and d["train_sessions"] == 1'
check "learned boot stalls far less than none" python3 -c 'import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
sys.exit(0 if b["stall_s"] < a["stall_s"] / 4 else 1)' "$T/none.json" "$T/hybrid.json"

"$CTL" replay --split "$T/boot.csv" >"$T/split1.json"
"$CTL" replay --split "$T/boot.csv" >"$T/split2.json"
check "--split trains on the first half, measures the second" json_check "$T/split1.json" \
	'd["ops"] == 150 and d["train_ops"] == 150'
check "deterministic: the same run twice gives the same JSON" python3 -c 'import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
for d in (a, b):
    del d["ns_per_observe"], d["ns_per_predict"]
sys.exit(0 if a == b else 1)' "$T/split1.json" "$T/split2.json"

"$CTL" replay --observe-at-issue --horizon-ms=500 "$T/boot.csv" >"$T/early.json"
check "--observe-at-issue and --horizon-ms reach the simulation" json_check "$T/early.json" \
	'd["sim"]["observe_at_issue"] is True and d["sim"]["horizon_s"] == 0.5'

"$CTL" replay --model=none --rtt-ms=10 --bandwidth-mbit=80 --reads-only --max-ops=1 \
	"$T/boot.csv" >"$T/one.json"
check "--max-ops and the link: one 64K read at 10 ms / 80 Mbit" json_check "$T/one.json" \
	'd["ops"] == 1 and abs(d["stall_s"] - (0.010 + 65536 / 10e6)) < 1e-5'

# The benchmark's real Debian boot, as aheadfs logged it (two mounts): nothing learned, the
# profile has nothing to say; learned from the first mount, the hybrid covers the second.
BOOT="$top_srcdir/contrib/bench/traces"
"$CTL" replay --model=hybrid --image-size=2G "$BOOT/debian-boot-2.csv" >"$T/boot-first.json"
"$CTL" replay --model=hybrid --image-size=2G --train="$BOOT/debian-boot-1.csv" \
	"$BOOT/debian-boot-2.csv" >"$T/boot-learned.json"
check "recorded boot, first mount: readahead only, most reads miss" json_check \
	"$T/boot-first.json" 'd["coverage"] < 0.5 and d["demand_misses"] > 300 and
	d["tiers"]["readahead"]["used_blocks"] > 100'
check "recorded boot, learned: coverage >= 0.9, accuracy >= 0.8, stall < 1/10 of the first" \
	python3 -c 'import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
sys.exit(0 if b["coverage"] >= 0.9 and b["accuracy"] >= 0.8 and
         b["stall_s"] * 10 < a["stall_s"] else 1)' "$T/boot-first.json" "$T/boot-learned.json"

# expect_error NAME PATTERN ARGS...: non-zero exit, one line on stderr matching PATTERN.
expect_error() {
	local name=$1 pattern=$2
	shift 2
	"$CTL" "$@" >"$T/err.out" 2>"$T/err.txt"
	local rc=$?
	if [ "$rc" -ne 0 ] && [ ! -s "$T/err.out" ] && [ "$(wc -l <"$T/err.txt")" -eq 1 ] &&
		grep -q -- "$pattern" "$T/err.txt"; then
		ok "$name"
	else
		not_ok "$name (exit $rc: $(cat "$T/err.txt"))"
	fi
}
expect_error "a missing trace is an error naming it" "$T/missing.csv" replay "$T/missing.csv"
expect_error "an unknown option is an error" "Unknown option --frobnicate" \
	replay --frobnicate "$T/boot.csv"
expect_error "an unknown model is an error" "--model=oracle: not a model" \
	replay --model=oracle "$T/boot.csv"
printf '0,0,65536\nnot a record\n' >"$T/bad.csv"
expect_error "a malformed trace is an error naming the line" "bad.csv" replay "$T/bad.csv"
"$CTL" --version | grep -q '^aheadfsctl [0-9]'
check "--version" test $? = 0
tap_done
