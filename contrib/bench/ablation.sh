#!/bin/bash
# ablation.sh [--quick] [--rtt-ms N] [--bandwidth-mbit N] [--out DIR]
#
# Every model of `aheadfsctl replay` (none, sequential, markov, profile, lstm, hybrid) on
# the same traces, on the same simulated link, one table:
#   - the VM boot: aheadfs's own access log of the benchmark's Debian boot (traces/,
#     two mounts at 20 ms / 200 Mbit): "first boot" replays mount 2 with nothing learned,
#     "learned boot" trains on mount 1 first;
#   - the public traces in ../shared/traces (read in place): trained on the first half,
#     measured on the second (--split), reads only, no background fill.
# Writes DIR/ablation.md (the table), DIR/ablation.csv and one JSON per run.
# --quick: the first 20,000 reads of each public trace only.
# Simulated time, so every column but the ns ones is exact and repeatable.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
TRACES=${AHEADFS_TRACES:-$TOP/../shared/traces}
RTT=20
MBIT=200
OUT=
QUICK=0
while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1; shift ;;
	--rtt-ms) RTT=$2; shift 2 ;;
	--bandwidth-mbit) MBIT=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	*) sed -n '2p' "$0" | sed 's/^# //' >&2; exit 2 ;;
	esac
done
CTL=${AHEADFSCTL:-}
if [ -z "$CTL" ]; then
	for c in "$TOP/build/aheadfsctl" "$TOP/aheadfsctl"; do
		[ -x "$c" ] && { CTL=$c; break; }
	done
fi
[ -n "$CTL" ] || { echo "ablation.sh: no aheadfsctl built (set AHEADFSCTL)" >&2; exit 1; }
OUT=${OUT:-/var/tmp/aheadfs-bench/ablation/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
MODELS="none sequential markov profile lstm hybrid"
LINK=(--rtt-ms="$RTT" --bandwidth-mbit="$MBIT")

run() { # NAME MODEL ARGS...: one replay into OUT/NAME.MODEL.json
	local name=$1 model=$2
	shift 2
	"$CTL" replay --model="$model" "${LINK[@]}" "$@" >"$OUT/$name.$model.json"
}

for m in $MODELS; do
	echo "boot, $m" >&2
	run boot-first "$m" --image-size=2G "$HERE/traces/debian-boot-2.csv"
	run boot-learned "$m" --image-size=2G --train="$HERE/traces/debian-boot-1.csv" \
		"$HERE/traces/debian-boot-2.csv"
done
cut=()
[ "$QUICK" = 0 ] || cut=(--max-ops=20000)
for t in cloudPhysicsIO.csv P3.lis.zst P6.lis.zst OLTP.lis.zst; do
	[ -f "$TRACES/$t" ] || { echo "ablation.sh: $TRACES/$t missing, skipped" >&2; continue; }
	for m in $MODELS; do
		echo "${t%%.*}, $m" >&2
		run "${t%%.*}" "$m" --split --reads-only --no-background "${cut[@]}" "$TRACES/$t"
	done
done

python3 - "$OUT" "$RTT" "$MBIT" "$(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo unknown)" <<'EOF'
import glob, json, os, sys
out, rtt, mbit, commit = sys.argv[1:5]
order = ["boot-first", "boot-learned", "cloudPhysicsIO", "P3", "P6", "OLTP"]
models = ["none", "sequential", "markov", "profile", "lstm", "hybrid"]
cols = ["accuracy", "coverage", "wasted_MiB", "demand_misses", "stall_s",
        "ns_per_observe", "ns_per_predict", "model_KiB"]
rows = []
for name in order:
    for m in models:
        f = os.path.join(out, f"{name}.{m}.json")
        if not os.path.exists(f):
            continue
        d = json.load(open(f))
        rows.append((name, m, d))
md = [f"Replay ablation, {rtt} ms / {mbit} Mbit/s, commit {commit}, load "
      f"{open('/proc/loadavg').read().split()[0]}", "",
      "| trace | model | " + " | ".join(cols) + " | best |",
      "|---|---|" + "---:|" * len(cols) + "---|"]
csv = ["trace,model," + ",".join(cols)]
for name in order:
    group = [r for r in rows if r[0] == name and r[1] != "none"]
    single = [r for r in group if r[1] != "hybrid"]
    best = min(single, key=lambda r: r[2]["stall_s"]) if single else None
    for (n, m, d) in [r for r in rows if r[0] == name]:
        v = [d["accuracy"], d["coverage"], d["wasted_bytes"] / 2**20, d["demand_misses"],
             d["stall_s"], d["ns_per_observe"], d["ns_per_predict"], d["model_bytes"] / 1024]
        f = ["%.3f" % v[0], "%.3f" % v[1], "%.1f" % v[2], "%d" % v[3], "%.2f" % v[4],
             "%.0f" % v[5], "%.0f" % v[6], "%.0f" % v[7]]
        mark = ""
        if best and m == best[1]:
            mark = "best single"
        if best and m == "hybrid":
            mark = ("hybrid <= best" if d["stall_s"] <= best[2]["stall_s"] * 1.005
                    else "hybrid LOSES (%.2f vs %.2f s)" % (d["stall_s"], best[2]["stall_s"]))
        md.append(f"| {n} | {m} | " + " | ".join(f) + f" | {mark} |")
        csv.append(f"{n},{m}," + ",".join(f))
open(os.path.join(out, "ablation.md"), "w").write("\n".join(md) + "\n")
open(os.path.join(out, "ablation.csv"), "w").write("\n".join(csv) + "\n")
print("\n".join(md))
EOF
