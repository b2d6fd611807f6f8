#!/usr/bin/env python3
"""The benchmark's record keeper and report writer (used by run.sh).

    report.py record RUNS.jsonl key=value...   append one run as a JSON line
    report.py report OUTDIR                    OUTDIR/runs.jsonl -> results.md,
                                               results.csv, ready.png
    report.py repeat RUNS.jsonl WL SETTING SYSTEM X
                                               print why SYSTEM's run 1 is not to
                                               be repeated (failed, or slower than
                                               X times local's run 1), else nothing

A run line holds workload, setting (RTT_MS/MBIT), system, run (a number;
"train" for aheadfs-learned's untimed first run; 0 for a system that did not
run, with the reason; "note" for a remark about the system), ok, reason, the
origin's requests= and bytes= for that run, the workload's own key=value
metrics (ready_s, app_s, loop_s, ...) and stats_file, aheadfs's
.aheadfs/stats JSON saved after the run.

The report takes medians over the numbered runs that succeeded. A cell whose
runs all failed shows why instead of a figure; a system that has nothing to
show yet says "not yet". Nothing is ever filled in from elsewhere.
"""
import csv
import json
import os
import re
import statistics
import subprocess
import sys

SYSTEM_ORDER = [
    "local", "aheadfs-noprefetch", "aheadfs-cold", "aheadfs-learned",
    "qemu-curl", "qemu-curl-1m", "nbdkit", "httpdirfs", "rclone",
]
SYSTEM_LABEL = {
    "local": "local file (the limit)",
    "aheadfs-noprefetch": "aheadfs, prefetch off",
    "aheadfs-cold": "aheadfs, first mount",
    "aheadfs-learned": "aheadfs, learned (2nd mount)",
    "qemu-curl": "qemu curl, 256 KiB readahead",
    "qemu-curl-1m": "qemu curl, 1 MiB readahead",
    "nbdkit": "nbdkit curl + readahead + cache",
    "httpdirfs": "httpdirfs --cache",
    "rclone": "rclone mount, vfs full",
}
# Per workload: its headline metrics (the pivot table's cells, each with its ratio to
# the local file), the figures the details table shows, and the pivot table's title.
# Times: lower is better (ratio > 1 is slower than local); fio's MB/s and IOPS: higher
# is better (ratio < 1 is slower).
REPLAY = {"heads": ["replay_s"], "metrics": ["replay_s", "mean_ms", "p99_ms", "ops", "ops_planned"],
          "also_ms": "mean_ms"}
WORKLOADS = {
    # qemu_cpu_s: qemu's CPU seconds until the app marker (boot.sh); offcpu_s: app_s less
    # that, the wall time the guest's CPU work does not explain (its disk waits, mostly).
    # Under TCG the guest's CPU work itself varies from boot to boot by seconds.
    "boot": {"heads": ["app_s"], "metrics": ["ready_s", "app_s", "qemu_cpu_s", "offcpu_s"],
             "title": "VM boot: seconds from qemu start to the application marker "
                      "(median; ratio to the local file)"},
    "loop": {"heads": ["loop_s"], "metrics": ["loop_s"],
             "title": "Application on a loop mount: seconds for the chrooted programs "
                      "(median; ratio to the local file)"},
    "fio": {"heads": ["seq_cold_MBps", "rand_cold_IOPS"],
            "metrics": ["seq_cold_MBps", "seq_warm_MBps", "rand_cold_IOPS", "rand_warm_IOPS",
                        "rand_cold_p99_ms"],
            "title": "fio, cold: sequential 1 MiB reads in MB/s / random 4 KiB reads (4 jobs) "
                     "in IOPS (fraction of the local file's: lower is slower)"},
}
REPLAY_TITLES = {
    "replay-boot": "aheadfs's trace of a VM boot (first mount, think time scaled to 4 s)",
    "replay-cloudphysics": "cloudPhysicsIO, first 1000 reads (think time x 0.005, offsets wrapped)",
    "replay-p3": "ARC P3, first 1000 reads back to back (offsets wrapped)",
    "replay-p6": "ARC P6, first 1000 reads back to back (offsets wrapped)",
    "replay-oltp": "ARC OLTP, first 1000 reads back to back",
}


def spec(wl):
    if wl in WORKLOADS:
        return WORKLOADS[wl]
    if wl and wl.startswith("replay-"):
        return dict(REPLAY, title="Trace replay, %s: seconds (median; ratio to the local file; "
                    ">= : stopped at the time bound), mean latency per read" % REPLAY_TITLES.get(wl, wl))
    return {"heads": [], "metrics": [], "title": wl}
# aheadfs's stats: the first key of each list found anywhere in the JSON.
STATS_KEYS = {
    "hit_rate": ["hit_rate", "prefetch_hit_rate", "coverage"],
    "accuracy": ["accuracy", "prefetch_accuracy"],
    "wasted_bytes": ["wasted_bytes", "prefetch_wasted_bytes", "wasted"],
}


def number(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def record(path, pairs):
    row = {}
    for p in pairs:
        k, sep, v = p.partition("=")
        if not sep:
            continue
        n = number(v)
        row[k] = v if n is None or k in ("setting", "run", "reason") else n
    with open(path, "a") as f:
        f.write(json.dumps(row, sort_keys=True) + "\n")


def read_wait_s(js):
    """Seconds the image reads spent in aheadfs (hits and misses), all images."""
    total, seen = 0.0, False
    for img in js.get("images", []) if isinstance(js, dict) else []:
        for h in (img.get("hit_latency"), img.get("miss_latency")):
            if not isinstance(h, dict) or number(h.get("count")) is None:
                continue
            # sum_us where the build gives it, else count x mean (truncated per read)
            us = number(h.get("sum_us"))
            if us is None and number(h.get("mean_us")) is not None:
                us = number(h["count"]) * number(h["mean_us"])
            if us is not None:
                total += us / 1e6
                seen = True
    return total if seen else None


def find_key(obj, names):
    """Depth-first search for the first of names in nested dicts and lists."""
    if isinstance(obj, dict):
        for n in names:
            if n in obj and number(obj[n]) is not None:
                return number(obj[n])
        children = obj.values()
    elif isinstance(obj, list):
        children = obj
    else:
        return None
    for v in children:
        r = find_key(v, names)
        if r is not None:
            return r
    return None


def setting_label(s):
    rtt, _, mbit = s.partition("/")
    if rtt == "0" and mbit == "0":
        return "0 ms / unshaped"
    return "%s ms RTT / %s Mbit" % (rtt, mbit if mbit != "0" else "unlimited")


def fmt(v, nd=1):
    return "-" if v is None else ("%.*f" % (nd, v))


def median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def summarize(outdir):
    runs = []
    with open(os.path.join(outdir, "runs.jsonl")) as f:
        for line in f:
            if line.strip():
                runs.append(json.loads(line))
    cells = {}
    for r in runs:
        key = (r.get("workload"), r.get("setting"), r.get("system"))
        c = cells.setdefault(key, {"ok": [], "failed": [], "notes": [], "train": None})
        run = str(r.get("run"))
        if run == "note":
            c["notes"].append(r.get("reason", ""))
        elif run == "train":
            c["train"] = r
        elif r.get("ok") == 1 and run != "0":
            c["ok"].append(r)
        else:
            c["failed"].append(r)
    table = []
    for (wl, setting, system), c in cells.items():
        heads, metrics = spec(wl)["heads"], spec(wl)["metrics"]
        if not metrics:  # a workload we do not tabulate: every numeric key
            metrics = sorted({k for r in c["ok"] for k, v in r.items()
                              if k.endswith("_s") and number(v) is not None})
        row = {"workload": wl, "setting": setting, "system": system,
               "runs_ok": len(c["ok"]), "runs_failed": len([r for r in c["failed"]
                                                            if str(r.get("run")) != "0"])}
        for r in c["ok"]:
            app, cpu = number(r.get("app_s")), number(r.get("qemu_cpu_s"))
            if wl == "boot" and app is not None and cpu is not None:
                r["offcpu_s"] = app - cpu
        for m in metrics:
            row[m] = median([number(r.get(m)) for r in c["ok"]])
        row["load"] = median([number(r.get("load")) for r in c["ok"]])
        row["requests"] = median([number(r.get("requests")) for r in c["ok"]])
        row["bytes"] = median([number(r.get("bytes")) for r in c["ok"]])
        stats = {k: [] for k in STATS_KEYS}
        fetch_x, wait_s, saved_s = [], [], []
        for r in c["ok"]:
            sf = r.get("stats_file")
            if not sf:
                continue
            try:
                with open(os.path.join(outdir, sf)) as f:
                    js = json.load(f)
            except (OSError, ValueError):
                continue
            for k, names in STATS_KEYS.items():
                stats[k].append(find_key(js, names))
            wait_s.append(read_wait_s(js))
            saved_s.append(number((js.get("total") or {}).get("latency_saved_s")))
            # Fetched before the app marker per byte the guest read (boot only).
            read = find_key(js, ["read_bytes"])
            if number(r.get("app_bytes")) is not None and read:
                fetch_x.append(number(r.get("app_bytes")) / read)
        for k in STATS_KEYS:
            row[k] = median(stats[k])
        row["fetch_x"] = median(fetch_x)
        row["read_wait_s"] = median(wait_s)
        row["saved_s"] = median(saved_s)
        row["stats_seen"] = any(r.get("stats_file") for r in c["ok"])
        # A replay stopped by its time bound: its seconds are a lower bound.
        row["truncated"] = int(any(number(r.get("truncated")) for r in c["ok"]))
        why = ""
        if not c["ok"]:
            reasons = [r.get("reason", "") for r in c["failed"] if r.get("reason")]
            why = reasons[0] if reasons else "no run"
            if not why.startswith(("not yet", "n/a")) and c["failed"] and str(c["failed"][0].get("run")) != "0":
                why = "fails: " + why
        elif c["failed"]:
            why = "%d of %d runs failed: %s" % (
                row["runs_failed"], row["runs_failed"] + len(c["ok"]),
                c["failed"][0].get("reason", ""))
        row["why"] = why
        row["notes"] = "; ".join(sorted(set(c["notes"])))
        row["heads"] = heads
        table.append(row)
    # Ratios to the local file, same workload and setting.
    local = {(r["workload"], r["setting"]): r for r in table if r["system"] == "local"}
    for r in table:
        base = local.get((r["workload"], r["setting"]))
        for h in r["heads"]:
            r["ratio_" + h] = None
            if base and base.get(h) and r.get(h) is not None:
                r["ratio_" + h] = r[h] / base[h]
        r["ratio"] = r.get("ratio_" + r["heads"][0]) if r["heads"] else None
    order = {s: i for i, s in enumerate(SYSTEM_ORDER)}
    settings = []
    for r in runs:
        if r.get("setting") not in settings:
            settings.append(r.get("setting"))
    table.sort(key=lambda r: (r["workload"], settings.index(r["setting"]),
                              order.get(r["system"], 99), r["system"]))
    return table, settings


def cell_text(r, heads, notes):
    """A pivot cell: the median of each headline metric and its ratio, or a short
    reason with a footnote number (the footnotes, in notes, give the whole reason)."""
    h = heads[0]
    if r.get(h) is None:
        why = r["why"] or "-"
        for short in ("not yet", "n/a"):
            if why.startswith(short):
                return why if len(why) < 50 else short + note_ref(notes, why)
        return ("fails" if why.startswith("fails") else why[:20]) + note_ref(notes, why)
    parts = []
    for h in heads:
        lb = ">=" if r["truncated"] and h == "replay_s" else ""
        p = lb + fmt(r.get(h), 0 if h.endswith("IOPS") else 1)
        if r.get("ratio_" + h) is not None and r["system"] != "local":
            p += " (%s%.2fx)" % (lb, r["ratio_" + h])
        parts.append(p)
    s = " / ".join(parts)
    also = spec(r["workload"]).get("also_ms")
    if also and r.get(also) is not None:
        s += ", %s ms/read" % fmt(r[also], 2)
    if r["why"]:  # some runs failed
        s += note_ref(notes, r["why"])
    return s


def note_ref(notes, text):
    # A port number differs between settings; the same failure is one note.
    key = re.sub(r"127\.0\.0\.1:[0-9]+", "127.0.0.1:PORT", text)
    if key not in notes:
        notes.append(key)
    return " [%d]" % (notes.index(key) + 1)


def write_markdown(outdir, table, settings):
    meta = ""
    mp = os.path.join(outdir, "meta.txt")
    if os.path.exists(mp):
        with open(mp) as f:
            meta = f.read()
    out = ["# aheadfs benchmark results", "", "```", meta.rstrip(), "```", ""]
    workloads = []
    for r in table:
        if r["workload"] not in workloads:
            workloads.append(r["workload"])
    systems = []
    for s in SYSTEM_ORDER + sorted({r["system"] for r in table}):
        if s not in systems and any(r["system"] == s for r in table):
            systems.append(s)
    for wl in workloads:
        rows = [r for r in table if r["workload"] == wl]
        heads = spec(wl)["heads"]
        # fio and the replays may run at fewer settings than the boot.
        wl_settings = [st for st in settings if any(r["setting"] == st for r in rows)]
        if heads:
            out += ["## " + spec(wl)["title"], "",
                    "| system | " + " | ".join(setting_label(s) for s in wl_settings) + " |",
                    "|---|" + "---|" * len(wl_settings)]
            notes = []
            for s in systems:
                cells = []
                if not any(r["system"] == s for r in rows):
                    continue
                for st in wl_settings:
                    m = [r for r in rows if r["system"] == s and r["setting"] == st]
                    cells.append(cell_text(m[0], heads, notes) if m else "-")
                out.append("| %s | %s |" % (SYSTEM_LABEL.get(s, s), " | ".join(cells)))
            out.append("")
            for i, n in enumerate(notes):
                out.append("[%d] %s  " % (i + 1, n.replace("|", "/")))
            if notes:
                out.append("")
        metrics = spec(wl)["metrics"] or sorted(
            {k for r in rows for k in r if k.endswith("_s")})
        out += ["### %s: details" % wl, "",
                "| setting | system | runs | " + " | ".join(metrics) +
                " | ratio | requests | MiB | prefetch hit rate | accuracy | wasted MiB"
                " | fetched before app / read | reads' time in aheadfs s | saved s | load | note |",
                "|---|---|---|" + "---|" * len(metrics) + "---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            aheadfs = r["system"].startswith("aheadfs")
            if aheadfs and r["runs_ok"] and not r["stats_seen"]:
                hr = acc = wb = "not yet"
            elif aheadfs and r["runs_ok"]:
                # The stats file exists; a key it does not have yet is "not yet".
                hr = "not yet" if r["hit_rate"] is None else fmt(r["hit_rate"], 3)
                acc = "not yet" if r["accuracy"] is None else fmt(r["accuracy"], 3)
                wb = "not yet" if r["wasted_bytes"] is None else fmt(r["wasted_bytes"] / 2**20)
            else:
                hr = acc = wb = "-"
            note = "; ".join(x for x in (r["why"], r["notes"],
                                         "stopped at the time bound" if r["truncated"] else "")
                             if x)
            out.append("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                setting_label(r["setting"]), SYSTEM_LABEL.get(r["system"], r["system"]),
                r["runs_ok"],
                " | ".join(fmt(r.get(m), 0 if m.startswith("ops") or m.endswith("IOPS") else 2)
                           for m in metrics),
                "-" if r["ratio"] is None else "%.2f" % r["ratio"],
                fmt(r["requests"], 0),
                fmt(r["bytes"] / 2**20 if r["bytes"] is not None else None),
                hr, acc, wb, "-" if r["fetch_x"] is None else "%.2fx" % r["fetch_x"],
                fmt(r["read_wait_s"], 2), fmt(r["saved_s"], 2),
                fmt(r["load"]), note.replace("|", "/")))
        out.append("")
    if os.path.exists(os.path.join(outdir, "ready.png")):
        out += ["![time to ready](ready.png)", ""]
    with open(os.path.join(outdir, "results.md"), "w") as f:
        f.write("\n".join(out))


def write_csv(outdir, table):
    metrics, ratios = [], []
    for w in list(WORKLOADS.values()) + [REPLAY]:
        metrics += [m for m in w["metrics"] if m not in metrics]
        ratios += ["ratio_" + h for h in w["heads"] if "ratio_" + h not in ratios]
    cols = (["workload", "setting", "system", "runs_ok", "runs_failed"] + metrics +
            ["truncated", "ratio"] + ratios +
            ["requests", "bytes", "hit_rate", "accuracy", "wasted_bytes", "fetch_x", "read_wait_s",
             "saved_s", "load", "why", "notes"])
    with open(os.path.join(outdir, "results.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in table:
            w.writerow(["" if r.get(c) is None else r.get(c) for c in cols])


def write_plot(outdir, table, settings):
    rows = [r for r in table if r["workload"] == "boot"]
    if not rows:
        return
    systems = [s for s in SYSTEM_ORDER if any(r["system"] == s for r in rows)]
    dat = os.path.join(outdir, "ready.dat")
    with open(dat, "w") as f:
        f.write("system " + " ".join('"%s"' % setting_label(s) for s in settings) + "\n")
        for s in systems:
            vals = []
            for st in settings:
                m = [r for r in rows if r["system"] == s and r["setting"] == st]
                v = m[0].get("ready_s") if m else None
                vals.append("?" if v is None else "%.2f" % v)
            f.write('"%s" %s\n' % (s, " ".join(vals)))
    gp = os.path.join(outdir, "ready.gp")
    with open(gp, "w") as f:
        f.write("""set terminal pngcairo size 1100,520 noenhanced font ',10'
set output '%s'
set title 'VM boot: seconds from qemu start to multi-user (median; missing = failed or not yet)'
set ylabel 'seconds to AHEADFS-MARK-READY'
set datafile missing '?'
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics rotate by -25 scale 0
set key top left
set grid ytics
set yrange [0:*]
set xrange [-0.6:%g]
plot for [i=2:%d] '%s' using i:xtic(1) title columnheader(i)
""" % (os.path.join(outdir, "ready.png"), len(systems) - 0.4, len(settings) + 1, dat))
    try:
        subprocess.run(["gnuplot", gp], check=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        print("report.py: no plot: %s" % e, file=sys.stderr)


def report(outdir):
    table, settings = summarize(outdir)
    write_csv(outdir, table)
    write_plot(outdir, table, settings)
    write_markdown(outdir, table, settings)
    print(os.path.join(outdir, "results.md"))


def repeat_check(path, wl, setting, system, limit):
    """Why SYSTEM's run 1 of WL at SETTING is not worth repeating, or ''."""
    runs = []
    with open(path) as f:
        runs = [json.loads(line) for line in f if line.strip()]

    def run1(s):
        for r in runs:
            if (r.get("workload"), r.get("setting"), r.get("system"),
                    str(r.get("run"))) == (wl, setting, s, "1"):
                return r
        return None
    mine, local = run1(system), run1("local")
    heads = spec(wl)["heads"]
    if mine is None:
        return ""
    if mine.get("ok") != 1:
        return "run 1 failed: not repeated"
    h = heads[0] if heads else None
    if h and local and number(local.get(h)) and number(mine.get(h)) and \
            number(mine[h]) > float(limit) * number(local[h]):
        return "1 run: run 1 took %.1f s, over %gx the local file's %.1f s: not repeated" % (
            number(mine[h]), float(limit), number(local[h]))
    return ""


def main(argv):
    if len(argv) >= 2 and argv[0] == "record":
        record(argv[1], argv[2:])
    elif len(argv) == 6 and argv[0] == "repeat":
        why = repeat_check(*argv[1:])
        if why:
            print(why)
    elif len(argv) == 2 and argv[0] == "report":
        report(argv[1])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
