package receiver

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"
)

// VictoriaLogs is one VictoriaLogs process.
type VictoriaLogs struct {
	p      *process
	addr   string
	client *http.Client
}

// LaunchVictoriaLogs starts VictoriaLogs over dir, keeping 100 years of
// records so that old test events are accepted.
func LaunchVictoriaLogs(bin, dir string) (*VictoriaLogs, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	v := &VictoriaLogs{addr: addr, client: &http.Client{Timeout: 30 * time.Second}}
	args := []string{"-storageDataPath=" + dir, "-httpListenAddr=" + addr, "-retentionPeriod=100y",
		"-futureRetention=100y", "-loggerLevel=WARN"}
	v.p, err = startProcess("victoria-logs", bin, args, nil, "http://"+addr+"/health", v.client)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// Stop stops the process.
func (v *VictoriaLogs) Stop() { v.p.stop() }

// Output is the last lines the process wrote.
func (v *VictoriaLogs) Output() string { return Tail(v.p.out.String()) }

// Pid is the process id, for reading its CPU time.
func (v *VictoriaLogs) Pid() int { return v.p.cmd.Process.Pid }

// URL is its base URL.
func (v *VictoriaLogs) URL() string { return "http://" + v.addr }

// ESURL is the base of its Elasticsearch API (the sink adds /_bulk).
func (v *VictoriaLogs) ESURL() string { return v.URL() + "/insert/elasticsearch" }

// Query runs a LogsQL query and returns the rows (field -> value).
func (v *VictoriaLogs) Query(q string) ([]map[string]string, error) {
	resp, err := v.client.PostForm(v.URL()+"/select/logsql/query", url.Values{"query": {q}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("victoria-logs query %q: HTTP %d", q, resp.StatusCode)
	}
	var out []map[string]string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var row map[string]string
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			return nil, fmt.Errorf("victoria-logs row: %w", err)
		}
		out = append(out, row)
	}
	return out, sc.Err()
}

// WaitRows polls Query until it returns at least want rows or timeout
// passes.
func (v *VictoriaLogs) WaitRows(q string, want int, timeout time.Duration) ([]map[string]string, error) {
	deadline := time.Now().Add(timeout)
	for {
		rows, err := v.Query(q)
		if err == nil && len(rows) >= want || time.Now().After(deadline) {
			return rows, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func splitHostPort(addr string) (string, string, error) { return net.SplitHostPort(addr) }
