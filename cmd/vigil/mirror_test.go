package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestMirrorDocFlags checks that every flag docs/migration.md names is a
// flag of vigil mirror verify, so the page documents the command as built.
func TestMirrorDocFlags(t *testing.T) {
	page, err := os.ReadFile("../../docs/migration.md")
	if err != nil {
		t.Fatalf("read the page: %v", err)
	}
	var out, usage bytes.Buffer
	if code := run([]string{"mirror", "verify", "-h"}, &out, &usage); code != 0 {
		t.Fatalf("vigil mirror verify -h: exit %d", code)
	}
	defined := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatch(usage.String(), -1) {
		defined[m[1]] = true
	}
	if len(defined) < 20 {
		t.Fatalf("only %d flags in the usage:\n%s", len(defined), usage.String())
	}
	named := regexp.MustCompile("`--([a-z][a-z-]*)").FindAllStringSubmatch(string(page), -1)
	if len(named) < 20 {
		t.Fatalf("the page names only %d flags", len(named))
	}
	for _, m := range named {
		if !defined[m[1]] {
			t.Errorf("docs/migration.md names --%s, which vigil mirror verify does not have", m[1])
		}
	}
}

// TestMirrorSubcommands: vigil mirror without a subcommand, or with one
// that does not exist, exits 2 naming the ones that do.
func TestMirrorSubcommands(t *testing.T) {
	for _, args := range [][]string{{"mirror"}, {"mirror", "compare-detections"}, {"mirror", "--source-brokers", "x"}} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "verify") {
			t.Errorf("vigil %s: exit %d, stderr %q; want 2 and the subcommands that exist", strings.Join(args, " "), code, errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"-h"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "vigil mirror verify") {
		t.Errorf("vigil -h does not list vigil mirror verify:\n%s", out.String())
	}
}
