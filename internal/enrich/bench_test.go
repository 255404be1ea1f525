package enrich

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilhq/vigil/internal/intel"
)

// BenchmarkEnrich enriches ingest's golden events with the GeoIP test
// databases and an index of every MISP warninglist (vigil bench enrich
// measures it with a million indicators).
func BenchmarkEnrich(b *testing.B) {
	files, _ := filepath.Glob(filepath.Join("..", "parse", "testdata", "*", "*.golden.json"))
	var events [][]byte
	for _, f := range files {
		data, _ := os.ReadFile(f)
		var items []struct{ Event map[string]any }
		json.Unmarshal(data, &items)
		for _, it := range items {
			v, _ := json.Marshal(it.Event)
			events = append(events, v)
		}
	}
	data := filepath.Join("..", "..", "..", "shared", "data")
	g, err := OpenGeoIP(filepath.Join(data, "geoip", "test-data", "GeoLite2-City-Test.mmdb"), filepath.Join(data, "geoip", "test-data", "GeoLite2-ASN-Test.mmdb"))
	if err != nil {
		b.Skip(err)
	}
	ix := intel.NewIndex()
	lists, _ := filepath.Glob(filepath.Join(data, "warninglists", "lists", "*", "list.json"))
	for _, l := range lists {
		raw, _ := os.ReadFile(l)
		if ld, err := intel.Load(intel.FormatWarninglist, l, raw, intel.LoadOptions{}); err == nil {
			for i := range ld.Records {
				ix.Add(&ld.Records[i])
			}
		}
	}
	e := &Enricher{Geo: g, Intel: ix, Assets: NewAssets(), Identities: NewIdentities()}
	w := e.NewWorker()
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf, _ = w.Enrich(buf[:0], events[i%len(events)], time.Time{})
	}
}
