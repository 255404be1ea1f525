package scorecard

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// need is an API a security pipeline uses, from the version its feature
// needs.
type need struct {
	key  int16
	min  int16
	what string
}

// needs is the table ApiVersions is compared with: the APIs the
// pipeline's clients (producers, detect and enrich as consumer groups,
// exactly-once stages, hunts by time, admin tools) call, and the first
// version with what they rely on.
var needs = []need{
	{0, 3, "produce record batches v2: headers, idempotence, transactions (KIP-98)"},
	{1, 4, "fetch at read_committed (KIP-98)"},
	{2, 1, "the offset of a timestamp (KIP-79)"},
	{3, 1, "topics, partitions, leaders"},
	{8, 2, "commit group offsets"},
	{9, 1, "fetch group offsets"},
	{10, 1, "find group and transaction coordinators"},
	{11, 0, "join a consumer group"},
	{12, 0, "stay in a consumer group"},
	{13, 0, "leave a consumer group"},
	{14, 0, "receive a group assignment"},
	{19, 0, "create topics"},
	{20, 0, "delete topics"},
	{22, 0, "producer ids: idempotence and transactions"},
	{24, 0, "add partitions to a transaction"},
	{25, 0, "add group offsets to a transaction"},
	{26, 0, "commit or abort a transaction"},
	{28, 0, "commit offsets inside a transaction"},
	{29, 0, "describe ACLs"},
	{32, 0, "describe topic configs (retention, compaction)"},
	{48, 0, "describe client quotas (KIP-546)"},
}

// saslNeeds are needed only on a SASL listener.
var saslNeeds = []need{
	{17, 1, "SASL handshake (KIP-152 framing)"},
	{36, 0, "SASL authenticate"},
}

// API is one line of the ApiVersions comparison.
type API struct {
	Key      int16  `json:"key"`
	Name     string `json:"name"`
	For      string `json:"needed_for"`
	Needs    int16  `json:"needs_version"`
	Offered  bool   `json:"offered"`
	Min      int16  `json:"min"`
	Max      int16  `json:"max"`
	Verdict  Status `json:"verdict"` // pass, or unsupported (missing or too old)
	Comments string `json:"comments,omitempty"`
}

// versions are the ranges every answering broker offers: the
// intersection, since a client may be sent to any of them.
type versions map[int16][2]int16

// lacking names the keys of needs that are not offered at the needs
// table's minimum version; "" when all are.
func (v versions) lacking(keys []int16) string {
	var out []string
	for _, k := range keys {
		min := minVersion(k)
		r, ok := v[k]
		switch {
		case !ok:
			out = append(out, kmsg.NameForKey(k)+" is not offered")
		case r[1] < min:
			out = append(out, fmt.Sprintf("%s is offered up to v%d, v%d is needed", kmsg.NameForKey(k), r[1], min))
		}
	}
	if len(out) == 0 {
		return ""
	}
	return "API missing: " + strings.Join(out, "; ")
}

func minVersion(key int16) int16 {
	for _, table := range [][]need{needs, saslNeeds} {
		for _, n := range table {
			if n.key == key {
				return n.min
			}
		}
	}
	return 0
}

// apiVersions asks every broker for its API versions and compares their
// intersection with the needs table. A cluster that does not answer is
// ErrUnreachable: there is nothing to score.
func (r *run) apiVersions(ctx context.Context, rep *Report) ([]API, Probe, error) {
	start := time.Now()
	pctx, cancel := context.WithTimeout(ctx, r.cfg.ProbeTimeout)
	defer cancel()
	cl, err := r.client()
	if err != nil {
		return nil, Probe{}, err
	}
	defer cl.Close()
	all, err := kadm.NewClient(cl).ApiVersions(pctx)
	if err != nil {
		return nil, Probe{}, fmt.Errorf("%w: %s: ApiVersions: %w", ErrUnreachable, strings.Join(r.cfg.Brokers, ","), err)
	}
	var firstErr error
	r.versions = versions{}
	first := true
	for _, b := range all.Sorted() {
		if b.Err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("broker %d: %w", b.NodeID, b.Err)
			}
			continue
		}
		rep.Answering++
		if first {
			rep.Guess = b.VersionGuess()
			b.EachKeySorted(func(k, lo, hi int16) { r.versions[k] = [2]int16{lo, hi} })
			first = false
			continue
		}
		// Intersect: a key some broker lacks is not offered.
		for k, v := range r.versions {
			lo, hi, ok := b.KeyVersions(k)
			if !ok {
				delete(r.versions, k)
				continue
			}
			r.versions[k] = [2]int16{max(v[0], lo), min(v[1], hi)}
		}
	}
	if rep.Answering == 0 {
		return nil, Probe{}, fmt.Errorf("%w: %s: no broker answered ApiVersions: %w", ErrUnreachable, strings.Join(r.cfg.Brokers, ","), firstErr)
	}
	table := needs
	if r.cfg.Protocol == "SASL_PLAINTEXT" || r.cfg.Protocol == "SASL_SSL" {
		table = append(append([]need{}, needs...), saslNeeds...)
	}
	listed := map[int16]bool{}
	var apis []API
	passed := 0
	for _, n := range table {
		listed[n.key] = true
		a := API{Key: n.key, Name: kmsg.NameForKey(n.key), For: n.what, Needs: n.min, Verdict: Pass}
		v, ok := r.versions[n.key]
		a.Offered, a.Min, a.Max = ok, v[0], v[1]
		switch {
		case !ok:
			a.Verdict, a.Comments = Unsupported, "not offered"
		case v[1] < n.min:
			a.Verdict, a.Comments = Unsupported, fmt.Sprintf("offered up to v%d, v%d needed", v[1], n.min)
		default:
			passed++
		}
		apis = append(apis, a)
	}
	var keys []int
	for k := range r.versions {
		if !listed[k] {
			keys = append(keys, int(k))
		}
	}
	sort.Ints(keys)
	for _, k := range keys {
		v := r.versions[int16(k)]
		rep.OtherAPIs = append(rep.OtherAPIs, fmt.Sprintf("%s v%d-%d", kmsg.NameForKey(int16(k)), v[0], v[1]))
	}
	pr := Probe{Name: "ApiVersions", Status: Pass, Duration: time.Since(start),
		Detail: fmt.Sprintf("%d of %d brokers answered; %d of %d needed APIs offered at the needed version; %d APIs offered in all; kversion's guess: %s",
			rep.Answering, len(all), passed, len(table), len(r.versions), rep.Guess)}
	if passed < len(table) {
		pr.Status = Fail
	}
	if firstErr != nil {
		pr.Error = firstErr.Error()
	}
	return apis, pr, nil
}
