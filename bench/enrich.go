package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilhq/vigil/internal/enrich"
	"github.com/vigilhq/vigil/internal/intel"
)

// EnrichOptions configures `vigil bench enrich`.
type EnrichOptions struct {
	// Data is ../shared/data: geoip/test-data and warninglists/lists.
	Data string
	// Events is a folder of ingest golden files (internal/parse/testdata):
	// the OCSF events ingest writes, enriched in a loop.
	Events string
	// IOCs is how many indicators are loaded (every MISP warninglist,
	// then synthetic indicators up to it).
	IOCs     int
	Duration time.Duration
	Rounds   int
	Workers  int
	Out      io.Writer
}

// EnrichRound is one round's figures.
type EnrichRound struct {
	PerCore, Baseline float64 // enrich and json.Valid events per CPU-second
}

// EnrichResult is the outcome of RunEnrich.
type EnrichResult struct {
	Indicators             int
	LoadTime               time.Duration
	IndexBytes             uint64 // heap held by the index and tables
	EventCount, Enrichment int
	Rounds                 []EnrichRound
	Median, BaselineMedian float64
}

// enrichTarget is issue 22's target: events per second per core with a
// million indicators loaded.
const enrichTarget = 100_000

// RunEnrich loads the indicators, then enriches the events through
// Workers goroutines for Duration per phase, Rounds times, alternating
// with a baseline phase that only validates the same events as JSON
// (json.Valid: one pass over the bytes, the least any JSON stage does).
func RunEnrich(o EnrichOptions) (*EnrichResult, error) {
	if o.IOCs <= 0 {
		o.IOCs = 1_000_000
	}
	if o.Duration <= 0 {
		o.Duration = 3 * time.Second
	}
	if o.Rounds <= 0 {
		o.Rounds = 5
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	events, err := goldenEvents(o.Events)
	if err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, fmt.Errorf("no events under %s", o.Events)
	}
	res := &EnrichResult{EventCount: len(events)}
	fmt.Fprintf(o.Out, "bench enrich: %d ingest events (golden files of %s), %d indicators, GeoLite2 City and ASN test databases, %d workers, %d rounds of %v\n",
		len(events), o.Events, o.IOCs, o.Workers, o.Rounds, o.Duration)

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	ix := intel.NewIndex()
	lists, _ := filepath.Glob(filepath.Join(o.Data, "warninglists", "lists", "*", "list.json"))
	for _, l := range lists {
		data, err := os.ReadFile(l)
		if err != nil {
			return nil, err
		}
		ld, err := intel.Load(intel.FormatWarninglist, filepath.Base(filepath.Dir(l)), data, intel.LoadOptions{})
		if err != nil {
			continue
		}
		for i := range ld.Records {
			if ix.Len() >= o.IOCs {
				break
			}
			ix.Add(&ld.Records[i])
		}
	}
	rng := rand.New(rand.NewPCG(22, 22))
	for ix.Len() < o.IOCs {
		r := syntheticIOC(rng)
		if err := r.Normalize(); err == nil {
			ix.Add(&r)
		}
	}
	res.LoadTime = time.Since(start)
	res.Indicators = ix.Stats().Indicators
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	res.IndexBytes = after.HeapInuse - min(after.HeapInuse, before.HeapInuse)

	geo, err := enrich.OpenGeoIP(filepath.Join(o.Data, "geoip", "test-data", "GeoLite2-City-Test.mmdb"),
		filepath.Join(o.Data, "geoip", "test-data", "GeoLite2-ASN-Test.mmdb"))
	if err != nil {
		return nil, err
	}
	defer geo.Close()
	assets := enrich.NewAssets()
	assets.Apply([]byte("ws-042"), []byte(`{"hostname":"ws-042","owner":"alice","criticality":"high"}`))
	e := &enrich.Enricher{Geo: geo, Intel: ix, Assets: assets, Identities: enrich.NewIdentities(), AssetsTopic: "assets", IdentitiesTopic: "identities"}
	{
		w := e.NewWorker()
		for _, ev := range events {
			if _, err := w.Enrich(nil, ev, time.Now()); err == nil && w.Enrichments > 0 {
				res.Enrichment++
			}
		}
	}
	fmt.Fprintf(o.Out, "loaded %d indicators in %v; index heap %.0f MiB; %d of %d events get enrichments\n",
		res.Indicators, res.LoadTime.Round(time.Millisecond), float64(res.IndexBytes)/(1<<20), res.Enrichment, len(events))
	debug.SetGCPercent(400) // the index is long-lived: collect the per-event garbage less often
	for r := range o.Rounds {
		base := enrichPhase(events, o, func() func([]byte) {
			return func(ev []byte) { json.Valid(ev) }
		})
		en := enrichPhase(events, o, func() func([]byte) {
			w := e.NewWorker()
			var buf []byte
			return func(ev []byte) {
				buf, _ = w.Enrich(buf[:0], ev, time.Time{})
			}
		}, e)
		res.Rounds = append(res.Rounds, EnrichRound{PerCore: en, Baseline: base})
		fmt.Fprintf(o.Out, "round %d: enrich %.0f events/s per core, json.Valid %.0f events/s per core (enrich costs %.1f x a validation)\n",
			r+1, en, base, base/en)
	}
	var ens, bases []float64
	for _, r := range res.Rounds {
		ens, bases = append(ens, r.PerCore), append(bases, r.Baseline)
	}
	res.Median, res.BaselineMedian = median(ens), median(bases)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	runtime.KeepAlive(e) // the index is what is measured
	verdict := "PASS"
	if res.Median < enrichTarget {
		verdict = "FAIL"
	}
	fmt.Fprintf(o.Out, "enrich: median %.0f events/s per core over %d rounds (min %.0f, max %.0f), json.Valid median %.0f; heap in use after a GC %.0f MiB, of it the index %.0f MiB\n",
		res.Median, len(ens), minF(ens), maxF(ens), res.BaselineMedian, float64(ms.HeapInuse)/(1<<20), float64(res.IndexBytes)/(1<<20))
	fmt.Fprintf(o.Out, "target >= %d events/s per core with %d indicators loaded: %s\n", enrichTarget, res.Indicators, verdict)
	return res, nil
}

// enrichPhase runs one function per worker over the events for the
// duration and returns events per CPU-second.
func enrichPhase(events [][]byte, o EnrichOptions, mk func() func([]byte), lock ...*enrich.Enricher) float64 {
	var n atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	cpu0, t0 := cpuTime(), time.Now()
	for w := range o.Workers {
		f := mk()
		wg.Go(func() {
			i := w * 7919 % len(events)
			for {
				select {
				case <-stop:
					return
				default:
				}
				// A batch under the read lock, as the stage does.
				for _, e := range lock {
					e.Lock()
				}
				for range 256 {
					f(events[i])
					i++
					if i == len(events) {
						i = 0
					}
				}
				for _, e := range lock {
					e.Unlock()
				}
				n.Add(256)
			}
		})
	}
	time.Sleep(o.Duration)
	close(stop)
	wg.Wait()
	cpu, wall := cpuTime()-cpu0, time.Since(t0)
	if cpu <= 0 {
		cpu = wall * time.Duration(min(o.Workers, runtime.GOMAXPROCS(0)))
	}
	return float64(n.Load()) / cpu.Seconds()
}

// syntheticIOC is a random indicator: 40% addresses, 30% domains, 20%
// SHA-256 hashes, 10% URLs, in one of ten feeds.
func syntheticIOC(rng *rand.Rand) intel.Record {
	r := intel.Record{Set: fmt.Sprintf("feed-%d", rng.IntN(10)), Source: intel.FormatCSV, Action: intel.ActionAlert, Severity: "high"}
	switch x := rng.IntN(10); {
	case x < 4:
		var b [4]byte
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		r.Type, r.Value = intel.TypeIP, netip.AddrFrom4(b).String()
	case x < 7:
		r.Type, r.Value = intel.TypeDomain, fmt.Sprintf("%x.%s", rng.Uint64(), []string{"com", "net", "ru", "info", "xyz"}[rng.IntN(5)])
	case x < 9:
		r.Type, r.Value = intel.TypeSHA256, fmt.Sprintf("%016x%016x%016x%016x", rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64())
	default:
		r.Type, r.Value = intel.TypeURL, fmt.Sprintf("http://%x.example/%x", rng.Uint32(), rng.Uint64())
	}
	return r
}

// goldenEvents reads the events of ingest's golden files.
func goldenEvents(dir string) ([][]byte, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.golden.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, errors.New("no golden files (want internal/parse/testdata/<parser>/*.golden.json)")
	}
	var out [][]byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var items []struct {
			Event json.RawMessage `json:"event"`
		}
		if json.Unmarshal(data, &items) != nil {
			continue
		}
		for _, it := range items {
			if len(it.Event) > 0 && it.Event[0] == '{' {
				var m map[string]any
				if json.Unmarshal(it.Event, &m) == nil {
					b, _ := json.Marshal(m) // compact, as ingest writes
					out = append(out, b)
				}
			}
		}
	}
	return out, nil
}

func minF(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = min(m, x)
	}
	return m
}

func maxF(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = max(m, x)
	}
	return m
}
