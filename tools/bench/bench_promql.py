#!/usr/bin/env python3
"""PromQL benchmark runner used by tools/bench-promql.sh (see there for usage).

`run`: times a fixed list of queries for one dataset against Prometheus and
Emberlens over HTTP (same process, interleaved runs, a fresh connection per
request, wall time until the whole body is read), checks that both answer
the same (series, points, values within 1e-9 relative), asks Prometheus for
`stats=all` (totalQueryableSamples) and writes the figures as JSON.
`report`: prints the table of several `run` outputs and the geometric mean.
Stdlib only.
"""
import argparse
import http.client
import json
import math
import os
import statistics
import subprocess
import sys
import time
import urllib.parse

# Bench dataset (gen_openmetrics.py): samples every 15 s from T0; every
# evaluation time and range start below sits 7.5 s off that grid, so the
# left-closed windows of Prometheus 2.x and the left-open ones of 3.x (ours)
# select the same samples; subquery steps are 59.999 s for the same reason.
T0 = 1709251200
T = T0 + 20 * 3600 + 7.5            # instant queries
R6H = (T - 6 * 3600, T, 60)         # 361 steps
R1H = (T - 3600, T, 15)             # 241 steps

BENCH = [
    ("rate", "instant", "rate(bench_http_requests_total[5m])"),
    ("sum by rate", "range6h", "sum by (handler) (rate(bench_http_requests_total[5m]))"),
    ("sum by rate, 1 code", "range6h", 'sum by (instance) (rate(bench_http_requests_total{code="500"}[5m]))'),
    ("histogram_quantile", "range6h",
     "histogram_quantile(0.99, sum by (le, handler) (rate(bench_http_request_duration_seconds_bucket[5m])))"),
    ("histogram_quantile per series", "instant",
     "histogram_quantile(0.9, rate(bench_http_request_duration_seconds_bucket[10m]))"),
    ("topk", "instant", "topk(10, rate(bench_http_requests_total[5m]))"),
    ("topk of sum", "range1h", "topk(5, sum by (instance) (rate(bench_http_requests_total[5m])))"),
    ("avg_over_time", "instant", "avg_over_time(bench_queue_depth[1h])"),
    ("avg of avg_over_time", "range6h", "avg by (queue) (avg_over_time(bench_queue_depth[10m]))"),
    ("subquery", "instant",
     "max_over_time(sum by (instance) (rate(bench_http_requests_total[5m]))[1h:59999ms])"),
    ("subquery in range", "range1h",
     'avg_over_time(rate(bench_http_requests_total{handler="/api/v1/query"}[5m])[10m:59999ms])'),
    ("binary join 1:1", "range1h",
     'rate(bench_http_requests_total{code="500"}[5m]) / ignoring (code) rate(bench_http_requests_total{code="200"}[5m])'),
    ("binary join group_left", "instant",
     "sum by (instance) (rate(bench_http_requests_total[5m])) * on (instance) group_left (version) bench_build_info"),
    ("sum / sum", "range6h",
     "sum by (handler) (rate(bench_http_request_duration_seconds_sum[5m]))"
     " / sum by (handler) (rate(bench_http_request_duration_seconds_count[5m]))"),
    ("count of filter", "range6h", "count by (instance) (bench_queue_depth > 80)"),
]

# The shared fixture synthetic-6h (200 series, 2024-01-01 00:00-06:00): the
# queries of fixtures/oracle/bench.sh over the whole 6 h, 7.5 s off the grid.
F0 = 1704067200
FIXTURE_RANGE = (F0 + 7.5, F0 + 6 * 3600 - 7.5, 15)
FIXTURE = [
    ("fx sum by le rate", "frange", "sum by (le) (rate(fx_request_duration_seconds_bucket[5m]))"),
    ("fx histogram_quantile", "frange",
     "histogram_quantile(0.9, sum by (le) (rate(fx_request_duration_seconds_bucket[5m])))"),
    ("fx rate", "frange", "rate(fx_requests_total[1m])"),
    ("fx avg_over_time", "frange", "avg_over_time(fx_temperature_celsius[5m])"),
]

DATASETS = {"bench": BENCH, "fixture": FIXTURE}
RANGES = {"range6h": R6H, "range1h": R1H, "frange": FIXTURE_RANGE}


def params(kind, expr):
    if kind == "instant":
        return "/api/v1/query", {"query": expr, "time": "%.3f" % T}
    start, end, step = RANGES[kind]
    return "/api/v1/query_range", {"query": expr, "start": "%.3f" % start, "end": "%.3f" % end, "step": str(step)}


def request(base, path, form):
    """One GET on a fresh connection: (seconds, status, body bytes)."""
    u = urllib.parse.urlsplit(base)
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    conn.request("GET", path + "?" + urllib.parse.urlencode(form))
    resp = conn.getresponse()
    body = resp.read()
    dt = time.perf_counter() - t0
    conn.close()
    return dt, resp.status, body


def normalize(body):
    """Series sorted by labels, values as floats; None if not a success."""
    d = json.loads(body)
    if d.get("status") != "success":
        return None
    out = []
    for s in d["data"]["result"]:
        pts = s.get("values") or ([s["value"]] if "value" in s else [])
        out.append((json.dumps(s["metric"], sort_keys=True), [(float(t), float(v)) for t, v in pts]))
    out.sort()
    return out


def same(a, b):
    if a is None or b is None or len(a) != len(b):
        return False
    for (la, pa), (lb, pb) in zip(a, b):
        if la != lb or len(pa) != len(pb):
            return False
        for (ta, va), (tb, vb) in zip(pa, pb):
            if ta != tb:
                return False
            if va == vb or (math.isnan(va) and math.isnan(vb)):
                continue
            if abs(va - vb) > 1e-9 * max(abs(va), abs(vb)):
                return False
    return True


def wasm_query(kind, expr):
    """The protocol's Query for one benchmark query (worker/protocol QueryTime)."""
    if kind == "instant":
        return {"expr": expr, "time": {"Instant": {"time_ms": round(T * 1000)}}}
    start, end, step = RANGES[kind]
    return {"expr": expr, "time": {"Range": {"start_ms": round(start * 1000), "end_ms": round(end * 1000),
                                             "step_ms": round(step * 1000)}}}


def wasm_normalize(answer):
    """A wasm_bench.mjs answer in normalize()'s shape (seconds, floats)."""
    out = [(json.dumps(s["labels"], sort_keys=True), [(t / 1000, float(v)) for t, v in s["points"]])
           for s in answer]
    out.sort()
    return out


def wasm_time(args, dataset):
    """WASM SLOT: every query of `dataset` evaluated by the Wasm engine in the
    app's Web Worker in headless Chromium (tools/bench/wasm_bench.mjs: one
    browser and one OpenFiles of the blocks in --wasm-data for the dataset,
    then per query a warm-up and --runs timed Query requests, wall time in the
    page from postMessage to the answer). Returns (driver output, {name: row})
    with the median seconds, or (None, {}) when --wasm-data is not given."""
    if not args.wasm_data:
        return None, {}
    queries = [dict(wasm_query(kind, expr), name=name) for name, kind, expr in DATASETS[dataset]]
    driver = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wasm_bench.mjs")
    proc = subprocess.run(["node", driver, args.wasm_url or args.ember, args.wasm_data, str(args.runs)],
                          input=json.dumps(queries), stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        print("bench: wasm driver failed (exit %d); Wasm columns left empty" % proc.returncode, file=sys.stderr)
        return None, {}
    out = json.loads(proc.stdout)
    rows = {}
    for r in out["results"]:
        rows[r["name"]] = {
            "s": statistics.median(r["times_ms"]) / 1e3 if r["times_ms"] and not r["error"] else None,
            "error": r["error"],
            "answer": wasm_normalize(r["answer"]) if r.get("answer") is not None else None,
        }
    return out, rows


def cmd_run(args):
    rows = []
    wasm_out, wasm_rows = wasm_time(args, args.dataset)
    for name, kind, expr in DATASETS[args.dataset]:
        path, form = params(kind, expr)
        backends = {"prom": args.prom, "ember": args.ember}
        answers, sizes, times, status = {}, {}, {k: [] for k in backends}, {}
        for k, base in backends.items():  # warm-up, answer check
            _, st, body = request(base, path, form)
            status[k], sizes[k], answers[k] = st, len(body), normalize(body)
        for i in range(args.runs):
            order = list(backends) if i % 2 == 0 else list(reversed(list(backends)))
            for k in order:
                times[k].append(request(backends[k], path, form)[0])
        _, _, stats_body = request(args.prom, path, dict(form, stats="all"))
        samples = json.loads(stats_body).get("data", {}).get("stats", {}).get("samples", {})
        wasm = wasm_rows.get(name, {})
        row = {
            "dataset": args.dataset, "name": name, "kind": kind, "query": expr,
            "prom_s": statistics.median(times["prom"]), "ember_s": statistics.median(times["ember"]),
            "wasm_s": wasm.get("s"),
            "wasm_same": same(answers["prom"], wasm["answer"]) if wasm.get("answer") is not None else None,
            "wasm_error": wasm.get("error"),
            "samples": samples.get("totalQueryableSamples"),
            "series": len(answers["ember"] or []),
            "points": sum(len(p) for _, p in answers["ember"] or []),
            "bytes_prom": sizes["prom"], "bytes_ember": sizes["ember"],
            "same": same(answers["prom"], answers["ember"]),
            "status": [status["prom"], status["ember"]],
        }
        rows.append(row)
        print("  %-32s prom %7.1f ms  ember %7.1f ms" % (name, row["prom_s"] * 1e3, row["ember_s"] * 1e3),
              file=sys.stderr, flush=True)
    if wasm_out:
        rows.append({"dataset": args.dataset, "wasm_info": {k: wasm_out[k] for k in ("files", "open_ms", "opened", "memory")}})
    with open(args.out, "w") as f:
        json.dump(rows, f, indent=1)


def cmd_report(args):
    rows, infos = [], []
    for p in args.files:
        with open(p) as f:
            for r in json.load(f):
                (infos if "wasm_info" in r else rows).append(r)
    hdr = "%-8s %-30s %-7s %10s %10s %7s %9s %7s %12s %8s %5s %5s" % (
        "dataset", "query", "kind", "prom ms", "ember ms", "ratio", "wasm ms", "ratio", "samples", "points",
        "same", "wsame")
    print(hdr)
    print("-" * len(hdr))
    ratios, wratios = [], []
    for r in rows:
        ratio = r["ember_s"] / r["prom_s"]
        ratios.append(ratio)
        w = r.get("wasm_s")
        wr = w / r["prom_s"] if w else None
        if wr:
            wratios.append(wr)
        ws = r.get("wasm_same")
        print("%-8s %-30s %-7s %10.1f %10.1f %7.2f %9s %7s %12s %8d %5s %5s" % (
            r["dataset"], r["name"][:30], r["kind"], r["prom_s"] * 1e3, r["ember_s"] * 1e3, ratio,
            "%.1f" % (w * 1e3) if w else ("ERR" if r.get("wasm_error") else "-"), "%.2f" % wr if wr else "-",
            r["samples"] if r["samples"] is not None else "?", r["points"],
            "yes" if r["same"] else "NO", "-" if ws is None else ("yes" if ws else "NO")))
    gm = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
    print("-" * len(hdr))
    print("geometric mean ratio emberlens/prometheus: %.3f over %d queries (goal <= 0.5); worst %.2f"
          % (gm, len(ratios), max(ratios)))
    if wratios:
        wgm = math.exp(sum(math.log(x) for x in wratios) / len(wratios))
        print("geometric mean ratio wasm/prometheus: %.3f over %d queries (goal <= 1.0); worst %.2f"
              % (wgm, len(wratios), max(wratios)))
    else:
        print("wasm: not measured (no --wasm-data, or the driver failed)")
    for i in infos:
        w = i["wasm_info"]
        m = w["memory"]
        heap = m.get("page_js_heap") or {}
        print("wasm %s: OpenFiles of %d files (%d blocks, %d series) %.0f ms; Chromium renderer RSS %.0f MiB "
              "after open, %.0f MiB after the queries (largest renderer's peak %.0f MiB); page JS heap %s" % (
                  i["dataset"], w["files"], w["opened"]["blocks"], w["opened"]["series"], w["open_ms"],
                  m["after_open"]["renderer_rss_kib"] / 1024, m["after_queries"]["renderer_rss_kib"] / 1024,
                  m["after_queries"]["renderer_peak_kib"] / 1024,
                  "%.0f MiB" % (heap["used_js_heap"] / 2**20) if heap else "n/a"))
    print("ratio = median wall time (HTTP; wasm: postMessage to answer in the page) / Prometheus's; "
          "samples = Prometheus's stats.samples.totalQueryableSamples; same/wsame = Emberlens/Wasm answer "
          "identical to Prometheus's (1e-9 relative)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--dataset", choices=sorted(DATASETS), required=True)
    r.add_argument("--prom", required=True)
    r.add_argument("--ember", required=True)
    r.add_argument("--runs", type=int, default=5)
    r.add_argument("--out", required=True)
    r.add_argument("--wasm-data", help="blocks to open in the Wasm worker (enables the Wasm columns)")
    r.add_argument("--wasm-url", help="emberlens serving the built app (default --ember)")
    p = sub.add_parser("report")
    p.add_argument("files", nargs="+")
    args = ap.parse_args()
    {"run": cmd_run, "report": cmd_report}[args.cmd](args)


if __name__ == "__main__":
    main()
