package receiver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// Zinc is one ZincSearch process.
type Zinc struct {
	p        *process
	addr     string
	User     string
	Password string
	client   *http.Client
}

// LaunchZinc starts ZincSearch over dir (no telemetry, no Sentry: it
// phones home by default).
func LaunchZinc(bin, dir string) (*Zinc, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	host, port, _ := splitHostPort(addr)
	z := &Zinc{addr: addr, User: "admin", Password: "vigil-test-Passw0rd", client: &http.Client{Timeout: 30 * time.Second}}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	env := []string{"ZINC_FIRST_ADMIN_USER=" + z.User, "ZINC_FIRST_ADMIN_PASSWORD=" + z.Password,
		"ZINC_DATA_PATH=" + filepath.Join(dir, "data"), "ZINC_SERVER_ADDRESS=" + host, "ZINC_SERVER_PORT=" + port,
		"ZINC_TELEMETRY=false", "ZINC_SENTRY=false", "ZINC_PROFILER=false", "ZINC_MAX_RESULTS=1000000",
		"ZINC_WAL_SYNC_INTERVAL=100ms", "ZINC_SHARD_NUM=1", "GIN_MODE=release"}
	z.p, err = startProcess("zincsearch", bin, nil, env, "http://"+addr+"/healthz", z.client)
	if err != nil {
		return nil, err
	}
	return z, nil
}

// Stop stops the process.
func (z *Zinc) Stop() { z.p.stop() }

// Output is the last lines the process wrote.
func (z *Zinc) Output() string { return Tail(z.p.out.String()) }

// Addr is host:port.
func (z *Zinc) Addr() string { return z.addr }

// ESURL is the base URL of its Elasticsearch API (the sink adds /_bulk).
func (z *Zinc) ESURL() string { return "http://" + z.addr + "/es" }

// IDs returns every document of the indexes matching pattern ("vigil-*")
// as id -> index. ZincSearch keys documents by _id within an index, so an
// id appears once per index it was written to.
func (z *Zinc) IDs(pattern string) (map[string][]string, error) {
	body, _ := json.Marshal(map[string]any{"query": map[string]any{"match_all": map[string]any{}}, "size": 1000000, "_source": []string{"class_uid"}})
	req, _ := http.NewRequest(http.MethodPost, z.ESURL()+"/"+pattern+"/_search", bytes.NewReader(body))
	req.SetBasicAuth(z.User, z.Password)
	req.Header.Set("Content-Type", "application/json")
	resp, err := z.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("zinc search: %d %s", resp.StatusCode, raw)
	}
	var ans struct {
		Hits struct {
			Hits []struct {
				Index string `json:"_index"`
				ID    string `json:"_id"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		return nil, fmt.Errorf("zinc search answer: %w", err)
	}
	out := map[string][]string{}
	for _, h := range ans.Hits.Hits {
		out[h.ID] = append(out[h.ID], h.Index)
	}
	return out, nil
}

// WaitIDs polls IDs until it holds at least want documents or timeout
// passes, then waits settle longer and reads again, so that documents
// still in ZincSearch's write-ahead log are counted too.
func (z *Zinc) WaitIDs(pattern string, want int, timeout, settle time.Duration) (map[string][]string, error) {
	deadline := time.Now().Add(timeout)
	for {
		ids, err := z.IDs(pattern)
		n := 0
		for _, ix := range ids {
			n += len(ix)
		}
		if err == nil && n >= want || time.Now().After(deadline) {
			time.Sleep(settle)
			return z.IDs(pattern)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
