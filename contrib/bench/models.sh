#!/bin/bash
# models.sh [--setting RTT/MBIT] [--runs N] [--models a,b,...] [--timeout S] [--out DIR]
#
# Issue 5's VM-boot ablation: the real benchmark boot (boot.sh through run.sh)
# with each predictor, first mount and learned mount, beside the local file.
# For each model (default: sequential,markov,profile,lstm,hybrid) it runs
#
#   AHEADFS_EXTRA_OPTS=model=MODEL run.sh --systems local,aheadfs-cold,aheadfs-learned
#       --settings SETTING --workloads boot --runs N --out DIR/MODEL
#
# (the local file is booted again with every model, so that a change in the
# machine's load shows in the ratio), then writes DIR/models.md: per model the
# median seconds to the app marker, first and learned, the ratio to that
# model's local boots, and the learned mount's accuracy and coverage.
# Default setting 20/200 (the issue's headline setting), 1 run; ~1.5 min per
# model on a quiet machine.  Everything run.sh starts, it stops.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$HERE/lib.sh"

SETTING=20/200
RUNS=1
MODELS=sequential,markov,profile,lstm,hybrid
TIMEOUT=150
OUT=
while [ $# -gt 0 ]; do
	case $1 in
	--setting) SETTING=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	--models) MODELS=$2; shift 2 ;;
	--timeout) TIMEOUT=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	*) sed -n '2p' "$0" | sed 's/^# //' >&2; exit 2 ;;
	esac
done
OUT=${OUT:-$BENCH_CACHE/results/models-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
IFS=, read -ra LIST <<<"$MODELS"
for m in "${LIST[@]}"; do
	case $m in
	none | sequential | markov | profile | lstm | hybrid) ;;
	*) die "unknown model: $m" ;;
	esac
	log "model $m"
	AHEADFS_EXTRA_OPTS="${AHEADFS_EXTRA_OPTS:+$AHEADFS_EXTRA_OPTS,}model=$m" \
		"$HERE/run.sh" --systems local,aheadfs-cold,aheadfs-learned --settings "$SETTING" \
		--workloads boot --runs "$RUNS" --repeat-max-x 0 --timeout "$TIMEOUT" \
		--out "$OUT/$m" >"$OUT/$m.log" 2>&1 || die "run.sh failed for $m: see $OUT/$m.log"
done

python3 - "$OUT" "$SETTING" "${LIST[@]}" <<'EOF'
import json, os, statistics, sys

out, setting, models = sys.argv[1], sys.argv[2], sys.argv[3:]


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def stat(outdir, r, key):
    sf = r.get("stats_file")
    if not sf:
        return None
    try:
        with open(os.path.join(outdir, sf)) as f:
            return json.load(f)["images"][0]["prefetch"][key]
    except (OSError, ValueError, KeyError, IndexError):
        return None


lines = ["# VM boot per model (%s, %s)" % (setting, "models.sh"), "",
         "| model | local app_s | first mount app_s | ratio | learned app_s | ratio"
         " | learned accuracy | learned coverage | load |",
         "|---|---|---|---|---|---|---|---|---|"]
for m in models:
    d = os.path.join(out, m)
    rows = [json.loads(line) for line in open(os.path.join(d, "runs.jsonl"))]
    ok = [r for r in rows if r.get("workload") == "boot" and r.get("ok") == 1
          and str(r.get("run")) not in ("note", "train", "0")]

    def app(system):
        return med([r.get("app_s") for r in ok if r["system"] == system
                    and isinstance(r.get("app_s"), float)])
    local, cold, learned = app("local"), app("aheadfs-cold"), app("aheadfs-learned")
    lr = [r for r in ok if r["system"] == "aheadfs-learned"]
    acc = med([stat(d, r, "accuracy") for r in lr])
    cov = med([stat(d, r, "coverage") for r in lr])
    load = med([r.get("load") for r in ok])

    def f(x, p=2):
        return "-" if x is None else "%.*f" % (p, x)

    def ratio(x):
        return "-" if x is None or not local else "%.2fx" % (x / local)
    lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        m, f(local), f(cold), ratio(cold), f(learned), ratio(learned), f(acc, 3), f(cov, 3),
        f(load, 1)))
with open(os.path.join(out, "models.md"), "w") as fh:
    fh.write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
log "done: $OUT/models.md"
