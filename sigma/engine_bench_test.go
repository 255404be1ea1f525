package sigma

import (
	"os"
	"testing"

	"github.com/vigilhq/vigil/sigma/sigmatest"
)

// regressionEvents returns every regression event document.
func regressionEvents(t testing.TB, data string) [][]byte {
	t.Helper()
	var docs [][]byte
	for _, c := range regressionCases(t, data) {
		for _, f := range c.files {
			fh, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			err = EachDocument(fh, func(_ int, doc []byte) error {
				docs = append(docs, append([]byte(nil), doc...))
				return nil
			})
			fh.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	return docs
}

func TestMatchAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the whole SigmaHQ rule set")
	}
	data := sigmatest.Data(t)
	eng, _, _ := loadSigmaHQ(t, data)
	docs := regressionEvents(t, data)
	m := eng.NewMatcher()
	for _, d := range docs { // warm the reusable buffers
		if _, err := m.Match(d); err != nil {
			t.Fatal(err)
		}
	}
	i := 0
	allocs := testing.AllocsPerRun(len(docs)*3, func() {
		m.Match(docs[i%len(docs)])
		i++
	})
	if allocs != 0 {
		t.Errorf("Match allocates %.2f times per event, want 0", allocs)
	}
}

func BenchmarkMatchSigmaHQ(b *testing.B) {
	data := sigmatest.Data(b)
	eng, _, _ := loadSigmaHQ(b, data)
	docs := regressionEvents(b, data)
	m := eng.NewMatcher()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.Match(docs[i%len(docs)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(m.Evaluated)/float64(b.N), "rules/event")
}
