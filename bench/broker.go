package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/server"
)

// outputs fills in a benchmark's optional writer and logger: results to
// nowhere and a silent broker log unless asked.
func outputs(out io.Writer, log *slog.Logger) (io.Writer, *slog.Logger) {
	if out == nil {
		out = io.Discard
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return out, log
}

// benchBroker is the broker a benchmark runs against.
type benchBroker struct {
	seeds   []string
	dataDir string // set for an in-process broker
	srv     *server.Server
	walDesc string // the in-process broker's WAL settings
	stop    func()
}

// externalSettle is how long settle waits for a broker it cannot observe.
const externalSettle = 5 * time.Second

// settle waits until the broker has caught up with earlier phases (its
// upload backlog is gone), so that a phase measures its own load, not the
// previous phase's tail. It returns how long that took.
func (b *benchBroker) settle(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	if b.srv == nil {
		select {
		case <-time.After(externalSettle):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		return time.Since(start), nil
	}
	for b.srv.UploadBacklog() > 0 {
		if time.Since(start) > 2*time.Minute {
			return 0, fmt.Errorf("upload backlog of %d bytes not drained after 2m", b.srv.UploadBacklog())
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return time.Since(start), nil
}

// useBroker returns the broker to benchmark: the given seeds, or an
// in-process broker on a temporary data dir (then dataDir is set, and stop
// shuts it down and removes the dir). mods adjust the in-process broker's
// config.
func useBroker(ctx context.Context, seeds []string, log *slog.Logger, out io.Writer, mods ...func(*config.Broker)) (*benchBroker, error) {
	if len(seeds) > 0 {
		fmt.Fprintf(out, "broker:        %s\n", strings.Join(seeds, ","))
		return &benchBroker{seeds: seeds, stop: func() {}}, nil
	}
	dir, err := os.MkdirTemp("", "vigil-bench-")
	if err != nil {
		return nil, err
	}
	dataDir := filepath.Join(dir, "broker")
	cfg := config.Default()
	cfg.AdminListen = "127.0.0.1:0" // never collide with a broker on the default port
	cfg.Listen = "127.0.0.1:0"
	cfg.Advertised = "127.0.0.1:0"
	cfg.DataDir = dataDir
	cfg.ObjectStore = filepath.Join(dataDir, "objects")
	for _, mod := range mods {
		mod(&cfg)
	}
	srv, err := server.Start(ctx, cfg, log)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start in-process broker: %w", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	b := &benchBroker{seeds: []string{srv.Addr().String()}, dataDir: dataDir, srv: srv, walDesc: "file (fsync per group commit)"}
	if !cfg.WALSync {
		b.walDesc = "file (NO fsync: --wal-sync=false, a diagnostic; targets not judged)"
	}
	if cfg.WAL == "object" {
		b.walDesc = fmt.Sprintf("object (chunks in the local object store; flush interval %s, flush bytes %d)", cfg.WALFlushInterval, cfg.WALFlushBytes)
	}
	b.stop = func() {
		if err := srv.Close(); err != nil {
			log.Warn("bench: broker close", "err", err)
		}
		<-served
		os.RemoveAll(dir)
	}
	fmt.Fprintf(out, "broker:        in-process at %s (data dir %s)\n", b.seeds[0], dataDir)
	return b, nil
}
