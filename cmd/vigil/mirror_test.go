package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestMirrorDocFlags checks that every flag docs/migration.md names is a
// flag of vigil mirror, promote, verify or compare-detections, so the page
// documents the commands as built.
func TestMirrorDocFlags(t *testing.T) {
	page, err := os.ReadFile("../../docs/migration.md")
	if err != nil {
		t.Fatalf("read the page: %v", err)
	}
	defined := map[string]bool{}
	for _, sub := range []string{"verify", "compare-detections", "promote", "--help-flags"} {
		var out, usage bytes.Buffer
		if code := run([]string{"mirror", sub, "-h"}, &out, &usage); code != 0 {
			t.Fatalf("vigil mirror %s -h: exit %d", sub, code)
		}
		flags := regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatch(usage.String(), -1)
		if len(flags) < 10 {
			t.Fatalf("only %d flags in the usage of %s:\n%s", len(flags), sub, usage.String())
		}
		for _, m := range flags {
			defined[m[1]] = true
		}
	}
	named := regexp.MustCompile("`--([a-z][a-z-]*)").FindAllStringSubmatch(string(page), -1)
	if len(named) < 20 {
		t.Fatalf("the page names only %d flags", len(named))
	}
	for _, m := range named {
		if !defined[m[1]] {
			t.Errorf("docs/migration.md names --%s, which no vigil mirror command has", m[1])
		}
	}
}

// TestMirrorSubcommands: vigil mirror without a subcommand, or with one
// that does not exist, exits 2 naming the ones that do; compare-detections
// exists and says what it lacks.
func TestMirrorSubcommands(t *testing.T) {
	for _, args := range [][]string{{"mirror"}, {"mirror", "clone", "alerts"}} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "verify") || !strings.Contains(errOut.String(), "compare-detections") ||
			!strings.Contains(errOut.String(), "promote") {
			t.Errorf("vigil %s: exit %d, stderr %q; want 2 and the subcommands that exist", strings.Join(args, " "), code, errOut.String())
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"mirror", "--source-brokers", "x"}, "--topics is required"},
		{[]string{"mirror", "--topics", "x"}, "--source-brokers is required"},
		{[]string{"mirror", "--source-brokers", "x", "--topics", "("}, "missing closing )"},
		{[]string{"mirror", "--source-brokers", "x", "--topics", "x", "--sync-interval", "0s"}, "--sync-interval must be positive"},
		{[]string{"mirror", "promote"}, "name the topics to promote"},
		{[]string{"mirror", "promote", "alerts", "--bogus"}, "bogus"},
	} {
		var out, errOut bytes.Buffer
		if code := run(tc.args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("vigil %s: exit %d, stderr %q; want 2 and %q", strings.Join(tc.args, " "), code, errOut.String(), tc.want)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--source-brokers", "a:9092", "--topics", "x"}, "--rules is required"},
		{[]string{"--source-brokers", "a:9092", "--topics", "x", "--rules", "/nonexistent/rules"}, "--rules: stat /nonexistent/rules: no such file or directory"},
		{[]string{"--topics", "x", "--rules", "."}, "--source-brokers is required"},
		{[]string{"--source-brokers", "a:9092", "--topics", "x", "--rules", ".", "--from", "2026-12-02T00:00:00Z", "--to", "2026-12-01T00:00:00Z"}, "is not before --to"},
	} {
		var out, errOut bytes.Buffer
		args := append([]string{"mirror", "compare-detections"}, tc.args...)
		if code := run(args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("vigil %s: exit %d, stderr %q; want 2 and %q", strings.Join(args, " "), code, errOut.String(), tc.want)
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"-h"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "vigil mirror verify") ||
		!strings.Contains(out.String(), "vigil mirror compare-detections") {
		t.Errorf("vigil -h does not list vigil mirror verify and compare-detections:\n%s", out.String())
	}
}
