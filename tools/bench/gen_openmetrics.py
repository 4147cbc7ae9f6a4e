#!/usr/bin/env python3
"""Deterministic OpenMetrics generator for the PromQL benchmark (tools/bench-promql.sh).

Writes 10,000 series covering 24 h at a 15 s step (5,760 samples per series,
t = T0 .. T0+24h-15s, T0 = 2024-03-01T00:00:00Z) to stdout, for
`promtool tsdb create-blocks-from openmetrics --max-block-duration=24h`:

  * bench_http_requests_total{job="api",instance,handler,method,code} counters:
    50 instances x 10 handlers x 2 methods x 4 codes = 4,000 series, diurnal
    rates; 2% of the series reset once.
  * bench_queue_depth{job="worker",instance,queue} gauges: 50 x 47 = 2,350 series.
  * bench_build_info{job="api",instance,version} = 1: 50 series (for group_left joins).
  * bench_http_request_duration_seconds{job="api",instance,handler} classic
    histograms: 50 instances x 6 handlers x (10 buckets + _sum + _count) = 3,600 series.

Stdlib only; the output is identical for a given --seed. About 57.6 M lines
(~4.5 GB): pipe it into a file on a disk with room, import, delete.
"""
import argparse
import math
import random
import sys

T0 = 1709251200  # 2024-03-01T00:00:00Z, aligned to a 24h block boundary
STEP = 15
N = 24 * 3600 // STEP
DAY = 86400.0
INSTANCES = ["10.1.%d.%d:8080" % (i // 10, i % 10 + 10) for i in range(50)]
HANDLERS = ["/api/v1/query", "/api/v1/query_range", "/api/v1/series", "/api/v1/labels",
            "/api/v1/write", "/api/v1/read", "/metrics", "/-/healthy", "/graph", "/federate"]
METHODS = ["GET", "POST"]
CODES = ["200", "400", "404", "500"]
CODE_SHARE = [0.93, 0.03, 0.03, 0.01]
QUEUES = ["q%02d" % i for i in range(47)]
LE = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"]
LE_LOG = [math.log(float(x)) for x in LE[:-1]]


def lines(prefix, values, out):
    """One series: `prefix VALUE T` per step; values are preformatted strings."""
    ts = TS
    out.write("".join([prefix + v + " " + t + "\n" for v, t in zip(values, ts)]))


TS = [str(T0 + k * STEP) for k in range(N)]
DIURNAL = [1.0 + 0.6 * math.sin(2 * math.pi * k * STEP / DAY) for k in range(N)]


def counters(rng, out):
    out.write("# HELP bench_http_requests Requests served.\n# TYPE bench_http_requests counter\n")
    for inst in INSTANCES:
        for h_idx, h in enumerate(HANDLERS):
            for m in METHODS:
                for c, share in zip(CODES, CODE_SHARE):
                    rate = (0.2 + 3.0 * rng.random()) * share * (2.0 if m == "GET" else 1.0) / (1 + h_idx * 0.3)
                    v = rng.randint(0, 10000)
                    reset_at = rng.randrange(N) if rng.random() < 0.02 else -1
                    vals = []
                    rnd = rng.random
                    for k in range(N):
                        if k == reset_at:
                            v = 0
                        else:
                            v += int(rate * STEP * DIURNAL[k] * (0.5 + rnd()) + 0.5)
                        vals.append(str(v))
                    prefix = ('bench_http_requests_total{code="%s",handler="%s",instance="%s",job="api",method="%s"} '
                              % (c, h, inst, m))
                    lines(prefix, vals, out)


def gauges(rng, out):
    out.write("# HELP bench_queue_depth Items waiting.\n# TYPE bench_queue_depth gauge\n")
    for inst in INSTANCES:
        for q in QUEUES:
            base = 10 + 90 * rng.random()
            amp = 5 + 40 * rng.random()
            phase = 2 * math.pi * rng.random()
            rnd = rng.random
            w = 2 * math.pi * STEP / 3600.0
            vals = ["%.1f" % max(0.0, base + amp * math.sin(w * k + phase) + 10 * (rnd() - 0.5)) for k in range(N)]
            lines('bench_queue_depth{instance="%s",job="worker",queue="%s"} ' % (inst, q), vals, out)
    out.write("# HELP bench_build_info Build information.\n# TYPE bench_build_info gauge\n")
    for i, inst in enumerate(INSTANCES):
        lines('bench_build_info{instance="%s",job="api",version="1.%d.0"} ' % (inst, i % 3), ["1"] * N, out)


def phi(x):
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def histograms(rng, out):
    out.write("# HELP bench_http_request_duration_seconds Request latency.\n"
              "# TYPE bench_http_request_duration_seconds histogram\n")
    for inst in INSTANCES:
        for h_idx, h in enumerate(HANDLERS[:6]):
            mu0 = math.log(0.02 * (1 + h_idx))
            sigma = 0.8 + 0.1 * h_idx
            counts = [0] * len(LE)
            total = 0
            ssum = 0.0
            cols = [[] for _ in range(len(LE) + 2)]
            rnd = rng.random
            for k in range(N):
                if k > 0:
                    n = int((5 + 40 * rnd()) * DIURNAL[k])
                    mu = mu0 + 0.3 * (rnd() - 0.5)
                    for b, ll in enumerate(LE_LOG):
                        counts[b] += int(n * phi((ll - mu) / sigma) + 0.5)
                    counts[-1] += n
                    total += n
                    ssum += n * math.exp(mu + sigma * sigma / 2)
                for b in range(len(LE)):
                    cols[b].append(str(counts[b]))
                cols[-2].append("%.3f" % ssum)
                cols[-1].append(str(total))
            base = 'bench_http_request_duration_seconds_%s{handler="%s",instance="%s",job="api"%s} '
            for b, le in enumerate(LE):
                lines(base % ("bucket", h, inst, ',le="%s"' % le), cols[b], out)
            lines(base % ("sum", h, inst, ""), cols[-2], out)
            lines(base % ("count", h, inst, ""), cols[-1], out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=20240301)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    out = sys.stdout
    counters(rng, out)
    gauges(rng, out)
    histograms(rng, out)
    out.write("# EOF\n")


if __name__ == "__main__":
    main()
