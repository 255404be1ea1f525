package ingest

import (
	"bytes"
	"sync"
	"time"

	"github.com/vigilhq/vigil/internal/parse"
)

// auditGrouper reassembles audit events whose records arrive as separate
// syslog messages (audispd's syslog plugin sends SYSCALL, EXECVE, CWD,
// PATH, PROCTITLE and EOE of one event one by one). auditd writes one
// event's records back to back, so per host it holds the records of the
// current serial and flushes them when the serial changes, on EOE, when
// the group is large, or after maxAge (single-record events such as
// USER_LOGIN have no EOE).
type auditGrouper struct {
	parsers *parse.Parsers
	maxAge  time.Duration

	mu      sync.Mutex
	pending map[string]*auditPending // by host
}

type auditPending struct {
	serial string
	lines  []string
	frames [][]byte
	o      origin
	first  time.Time
}

// maxAuditGroup bounds one group: no real event has this many records,
// and it keeps a misbehaving sender from growing a group forever.
const maxAuditGroup = 256

func newAuditGrouper(p *parse.Parsers, maxAge time.Duration) *auditGrouper {
	return &auditGrouper{parsers: p, maxAge: maxAge, pending: map[string]*auditPending{}}
}

func (g *auditGrouper) parse(pg *auditPending, host string) []parse.Result {
	return g.parsers.AuditGroup(pg.lines, host, bytes.Join(pg.frames, []byte("\n")))
}

// add takes one audit record; it returns the results of groups it
// completed (to be published by the caller, with the caller's
// backpressure) and the origin they came from.
func (g *auditGrouper) add(line, host string, frame []byte, o origin, now time.Time) ([]parse.Result, origin) {
	serial, typ, err := parse.AuditSerial(line)
	if err != nil {
		// Not a well-formed record: parsing it alone yields the
		// dead-letter result with the reason.
		return g.parsers.AuditGroup([]string{line}, host, frame), o
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []parse.Result
	outOrigin := o
	pg := g.pending[host]
	if pg != nil && pg.serial != serial {
		out = g.parse(pg, host)
		outOrigin = pg.o
		pg = nil
	}
	if pg == nil {
		pg = &auditPending{serial: serial, o: o, first: now}
		g.pending[host] = pg
	}
	pg.lines = append(pg.lines, line)
	pg.frames = append(pg.frames, frame)
	if typ == "EOE" || len(pg.lines) >= maxAuditGroup {
		out = append(out, g.parse(pg, host)...)
		delete(g.pending, host)
	}
	return out, outOrigin
}

// expired removes and returns the groups older than maxAge (all of them
// when all is set, at shutdown).
func (g *auditGrouper) expired(now time.Time, all bool) (results [][]parse.Result, origins []origin) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for host, pg := range g.pending {
		if all || now.Sub(pg.first) >= g.maxAge {
			results = append(results, g.parse(pg, host))
			origins = append(origins, pg.o)
			delete(g.pending, host)
		}
	}
	return results, origins
}
