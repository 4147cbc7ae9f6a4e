// exporter serves deterministic native histograms (integer counts) for
// make-fixture.sh: Prometheus 2.42 scrapes them into real histogram chunks.
// Each scrape of /metrics first observes a fixed batch of values, so the
// data depends only on the number of scrapes.
package main

import (
	"flag"
	"log"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:19200", "listen address")
	flag.Parse()
	reg := prometheus.NewRegistry()
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:                        "fx_native_latency_seconds",
		Help:                        "Native histogram, factor 1.1, observations between 1 ms and 10 s.",
		NativeHistogramBucketFactor: 1.1,
	}, []string{"route"})
	temps := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:                         "fx_native_delta_celsius",
		Help:                         "Native histogram with negative observations and a zero bucket.",
		NativeHistogramBucketFactor:  2,
		NativeHistogramZeroThreshold: 0.001,
	})
	reg.MustRegister(latency, temps)
	var mu sync.Mutex
	scrape := 0
	handler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	http.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		scrape++
		for i := 0; i < 20; i++ {
			x := float64((scrape*37+i*101)%1000) / 100 // 0 .. 9.99
			latency.WithLabelValues("/api").Observe(0.001 + x)
			latency.WithLabelValues("/ui").Observe(0.001 + x/10)
			temps.Observe(x - 5) // negative, positive and (for x == 5) zero
		}
		if scrape%7 == 0 {
			temps.Observe(0)
		}
		mu.Unlock()
		handler.ServeHTTP(w, r)
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}
