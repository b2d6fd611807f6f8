#!/usr/bin/env python3
"""The report of s3.sh (issue 6's numbers): radosgw beside nginx.

    s3report.py record RUNS.jsonl key=value...   append one run (report.py's record)
    s3report.py report OUTDIR                    OUTDIR/runs.jsonl -> s3.md, s3.csv

Runs are kind=boot (config, run, ready_s, app_s) or kind=seq (origin, reader curl|mount,
size read, seconds); requests/bytes/retries/failures are the origin counters of aheadfs's
stats JSON, saved after each mount. Medians over the numbered
runs that succeeded; a cell without one says why. Nothing is filled in from elsewhere.
"""
import csv
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402  (the benchmark's own record format, read-only reuse)

CONFIGS = [
    ("local", "local file (the limit)"),
    ("nginx-first", "aheadfs, nginx, first mount"),
    ("s3-first", "aheadfs, radosgw (S3), first mount"),
    ("nginx-learned", "aheadfs, nginx, learned"),
    ("s3-learned", "aheadfs, radosgw (S3), learned"),
]
ORIGINS = [("s3", "radosgw, SigV4", "curl --aws-sigv4"), ("nginx", "nginx", "curl")]
CSV_FIELDS = ["kind", "config", "origin", "reader", "size", "run", "ok", "reason",
              "ready_s", "app_s", "app_vs_local", "seconds", "mb_s", "requests",
              "bytes", "retries", "failures", "load"]


def load(outdir):
    with open(os.path.join(outdir, "runs.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def med(rows, key):
    vals = [report.number(r.get(key)) for r in rows]
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def numbered_ok(rows):
    return [r for r in rows if str(r.get("run")) != "train" and r.get("ok") == 1]


def why(rows):
    reasons = sorted({r.get("reason") or "failed" for r in rows if r.get("ok") != 1})
    return "; ".join(reasons) if reasons else "no run"


def loads(rows):
    ls = [report.number(r.get("load")) for r in rows]
    ls = [v for v in ls if v is not None]
    return "%.1f-%.1f" % (min(ls), max(ls)) if ls else "-"


def boot_table(runs):
    boots = [r for r in runs if r.get("kind") == "boot"]
    local_app = med(numbered_ok([r for r in boots if r.get("config") == "local"]), "app_s")
    local_ready = med(numbered_ok([r for r in boots if r.get("config") == "local"]), "ready_s")
    out = ["| configuration | ready (s) | app (s) | ready / local | app / local "
           "| origin requests | origin MiB | runs ok | load |",
           "|---|---|---|---|---|---|---|---|---|"]
    for cfg, label in CONFIGS:
        rows = [r for r in boots if r.get("config") == cfg and str(r.get("run")) != "train"]
        good = numbered_ok(rows)
        if not rows:
            continue
        if not good:
            out.append("| %s | %s | | | | | | 0/%d | %s |" % (label, why(rows), len(rows), loads(rows)))
            continue
        ready, app = med(good, "ready_s"), med(good, "app_s")
        reqs, byts = med(good, "requests"), med(good, "bytes")
        out.append("| %s | %s | %s | %s | %s | %s | %s | %d/%d | %s |" % (
            label, report.fmt(ready, 2), report.fmt(app, 2),
            ratio(ready, local_ready), ratio(app, local_app),
            "-" if reqs is None else "%d" % reqs,
            "-" if byts is None else "%.1f" % (byts / 1048576),
            len(good), len(rows), loads(rows)))
    return out


def ratio(a, b):
    return "%.2fx" % (a / b) if a is not None and b else "-"


def seq_table(runs):
    seqs = [r for r in runs if r.get("kind") == "seq"]
    sizes = sorted({int(r["size"]) for r in seqs if report.number(r.get("size"))})
    out = ["| object bytes read | origin | reference (MB/s) | aheadfs mount, dd bs=1M (MB/s) "
           "| mount / reference | mount's origin requests | runs ok (curl, mount) | load |",
           "|---|---|---|---|---|---|---|---|"]
    for size in sizes:
        for origin, label, ref in ORIGINS:
            rows = [r for r in seqs if r.get("origin") == origin and int(r.get("size", 0)) == size]
            curl = [r for r in rows if r.get("reader") == "curl"]
            mnt = [r for r in rows if r.get("reader") == "mount"]
            if not rows:
                continue
            c, m = med(numbered_ok(curl), "seconds"), med(numbered_ok(mnt), "seconds")
            reqs = med(numbered_ok(mnt), "requests")
            out.append("| %s (%d MiB) | %s | %s: %s | %s | %s | %s | %s | %s |" % (
                size, size // 1048576, label, ref,
                "%.0f" % (size / c / 1e6) if c else why(curl),
                "%.0f" % (size / m / 1e6) if m else why(mnt),
                ratio(c, m), "-" if reqs is None else "%d" % reqs,
                "%d/%d, %d/%d" % (len(numbered_ok(curl)), len(curl), len(numbered_ok(mnt)), len(mnt)),
                loads(rows)))
    return out


def write_csv(outdir, runs):
    local_app = med(numbered_ok([r for r in runs if r.get("kind") == "boot"
                                 and r.get("config") == "local"]), "app_s")
    with open(os.path.join(outdir, "s3.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in runs:
            row = dict(r)
            if r.get("kind") == "boot":
                app = report.number(r.get("app_s"))
                row["app_vs_local"] = "%.3f" % (app / local_app) if app and local_app else ""
            else:
                s, b = report.number(r.get("seconds")), report.number(r.get("size"))
                row["size"] = "%d" % b if b else ""
                row["mb_s"] = "%.1f" % (b / s / 1e6) if s and b else ""
            w.writerow(row)


def write_report(outdir):
    runs = load(outdir)
    meta = open(os.path.join(outdir, "meta.txt")).read().strip()
    lines = ["# aheadfs from radosgw (S3) beside nginx, both unshaped on 127.0.0.1", "",
             "```", meta, "```", ""]
    seq = seq_table(runs)
    if len(seq) > 2:
        lines += ["## Cold sequential throughput (medians)", ""] + seq + [""]
    boot = boot_table(runs)
    if len(boot) > 2:
        lines += ["## VM boot (medians; seconds from qemu's start to the guest's marker)", ""]
        lines += boot + [""]
    with open(os.path.join(outdir, "s3.md"), "w") as f:
        f.write("\n".join(lines))
    write_csv(outdir, runs)


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "record":
        report.record(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) == 3 and sys.argv[1] == "report":
        write_report(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
