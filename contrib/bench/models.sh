#!/bin/bash
# models.sh [--setting RTT/MBIT] [--runs N] [--models a,b,...] [--timeout S] [--out DIR]
#
# Issue 5's VM-boot ablation: the real benchmark boot (boot.sh through run.sh)
# with each predictor, first mount and learned mount, beside the local file.
# For each of N rounds, and in each round for each model (default:
# sequential,markov,profile,lstm,hybrid), it runs
#
#   AHEADFS_EXTRA_OPTS=model=MODEL run.sh --systems local,aheadfs-cold,aheadfs-learned
#       --settings SETTING --workloads boot --runs 1 --out DIR/MODEL/run-R
#
# (the local file is booted again beside every model's mounts, and the models take
# turns round by round, so that a machine that drifts during the hour touches every
# model alike), then writes DIR/models.md: per model the median seconds to the app
# marker, first and learned, the median of each round's ratio to the local boot of
# the same round, and the learned mount's accuracy and coverage.
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
done
for ((r = 1; r <= RUNS; r++)); do
	for m in "${LIST[@]}"; do
		log "round $r, model $m"
		mkdir -p "$OUT/$m"
		AHEADFS_EXTRA_OPTS="${AHEADFS_EXTRA_OPTS:+$AHEADFS_EXTRA_OPTS,}model=$m" \
			"$HERE/run.sh" --systems local,aheadfs-cold,aheadfs-learned \
			--settings "$SETTING" --workloads boot --runs 1 --repeat-max-x 0 \
			--timeout "$TIMEOUT" --out "$OUT/$m/run-$r" >"$OUT/$m/run-$r.log" 2>&1 ||
			die "run.sh failed for $m: see $OUT/$m/run-$r.log"
	done
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
         "| model | local app_s | first mount app_s | ratio (per round) | learned app_s | ratio (per round)"
         " | learned accuracy | learned coverage | load |",
         "|---|---|---|---|---|---|---|---|---|"]
def f(x, p=2):
    return "-" if x is None else "%.*f" % (p, x)


for m in models:
    rounds = []  # per round: its directory and its good boot rows
    for name in sorted(os.listdir(os.path.join(out, m))):
        d = os.path.join(out, m, name)
        if not name.startswith("run-") or not os.path.isfile(os.path.join(d, "runs.jsonl")):
            continue
        rows = [json.loads(line) for line in open(os.path.join(d, "runs.jsonl"))]
        rounds.append((d, [r for r in rows if r.get("workload") == "boot" and r.get("ok") == 1
                           and str(r.get("run")) not in ("note", "train", "0")]))

    def app(rows, system):
        xs = [r["app_s"] for r in rows if r["system"] == system
              and isinstance(r.get("app_s"), float)]
        return xs[0] if xs else None

    def ratio(system):
        rs = [app(rows, system) / app(rows, "local") for _, rows in rounds
              if app(rows, system) is not None and app(rows, "local")]
        return "-" if not rs else "%.2fx" % statistics.median(rs)
    local, cold, learned = (med([app(rows, s) for _, rows in rounds])
                            for s in ("local", "aheadfs-cold", "aheadfs-learned"))
    lr = [(d, r) for d, rows in rounds for r in rows if r["system"] == "aheadfs-learned"]
    acc = med([stat(d, r, "accuracy") for d, r in lr])
    cov = med([stat(d, r, "coverage") for d, r in lr])
    load = med([r.get("load") for _, rows in rounds for r in rows])
    lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        m, f(local), f(cold), ratio("aheadfs-cold"), f(learned), ratio("aheadfs-learned"),
        f(acc, 3), f(cov, 3), f(load, 1)))
with open(os.path.join(out, "models.md"), "w") as fh:
    fh.write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
log "done: $OUT/models.md"
