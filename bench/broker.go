package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigilhq/vigil/internal/config"
	"github.com/vigilhq/vigil/internal/server"
)

// useBroker returns the seed brokers to benchmark: the given ones, or an
// in-process broker on a temporary data dir (then dataDir is set, and stop
// shuts it down and removes the dir).
func useBroker(ctx context.Context, seeds []string, log *slog.Logger, out io.Writer) (brokers []string, dataDir string, stop func(), err error) {
	if len(seeds) > 0 {
		fmt.Fprintf(out, "broker:        %s\n", strings.Join(seeds, ","))
		return seeds, "", func() {}, nil
	}
	dir, err := os.MkdirTemp("", "vigil-bench-")
	if err != nil {
		return nil, "", nil, err
	}
	dataDir = filepath.Join(dir, "broker")
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.Advertised = "127.0.0.1:0"
	cfg.DataDir = dataDir
	cfg.ObjectStore = filepath.Join(dataDir, "objects")
	srv, err := server.Start(ctx, cfg, log)
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", nil, fmt.Errorf("start in-process broker: %w", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	brokers = []string{srv.Addr().String()}
	fmt.Fprintf(out, "broker:        in-process at %s (data dir %s)\n", brokers[0], dataDir)
	return brokers, dataDir, func() {
		if err := srv.Close(); err != nil {
			log.Warn("bench: broker close", "err", err)
		}
		<-served
		os.RemoveAll(dir)
	}, nil
}
