package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minipay/minipay/internal/testdb"
)

// serverOnlyFlags belong to the processes that serve the API; no other
// command may list them.
var serverOnlyFlags = []string{"addr", "admin-key", "host-key", "secret", "catalog", "rate-limit", "debug-addr",
	"webhook-allow-private", "webhook-retry-schedule", "webhook-timeout", "sandbox", "settlement-schedule", "trust-proxy"}

var flagLine = regexp.MustCompile(`(?m)^  -([a-z-]+)`)

// TestEveryCommandHelp runs the real binary's help for every command, in
// all three spellings: each exits 0, says in its first line what the
// command does, shows its usage, and lists exactly the command's own flags.
func TestEveryCommandHelp(t *testing.T) {
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			words := strings.Fields(c.name)
			var outs []string
			for _, args := range [][]string{append(words, "-h"), append(words, "--help"), append([]string{"help"}, words...)} {
				code, out, stderr := minipay(t, nil, args...)
				if code != 0 {
					t.Fatalf("minipay %s exited %d:\n%s%s", strings.Join(args, " "), code, out, stderr)
				}
				outs = append(outs, out)
			}
			if outs[0] != outs[1] || outs[0] != outs[2] {
				t.Fatalf("-h, --help and help differ:\n%s\n---\n%s\n---\n%s", outs[0], outs[1], outs[2])
			}
			out := outs[0]
			if first, _, _ := strings.Cut(out, "\n"); first != c.summary || !strings.HasSuffix(first, ".") {
				t.Fatalf("first line %q, want the summary %q", first, c.summary)
			}
			if !strings.Contains(out, "usage: minipay "+c.name) {
				t.Fatalf("no usage line:\n%s", out)
			}
			var listed []string
			for _, m := range flagLine.FindAllStringSubmatch(out, -1) {
				listed = append(listed, m[1])
			}
			var own []string
			fs := newFlagSet(c)
			fs.VisitAll(func(f *flagT) { own = append(own, f.Name) })
			if !slices.Equal(listed, own) {
				t.Fatalf("help lists flags %v, the command has %v", listed, own)
			}
			if c.name != "serve" && c.name != "dev" {
				for _, f := range listed {
					if slices.Contains(serverOnlyFlags, f) {
						t.Fatalf("%s lists serve's flag -%s", c.name, f)
					}
				}
			}
		})
	}
	code, out, _ := minipay(t, nil, "--help")
	if code != 0 || !strings.Contains(out, "settlement list") {
		t.Fatalf("minipay --help: %d\n%s", code, out)
	}
	code, _, stderr := minipay(t, nil, "settel")
	if code != 2 || !strings.Contains(stderr, `unknown command "settel"`) {
		t.Fatalf("a misspelt command: %d %s", code, stderr)
	}
	code, _, stderr = minipay(t, nil, "settle", "--cutof", "2026-11-28")
	if code != 2 || !strings.Contains(stderr, "minipay settle -h") {
		t.Fatalf("a misspelt flag: %d %s", code, stderr)
	}
}

// TestVersion: "version" and "--version" print the version and commit the
// binary was built with.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, stderr := minipay(t, nil, args...)
		want := "minipay " + testVersion + " (commit " + testCommit
		if code != 0 || !strings.HasPrefix(out, want) {
			t.Fatalf("minipay %s: %d %q %s, want %q…", args[0], code, out, stderr, want)
		}
	}
}

// TestConfigTableHasFlags: every variable in the README's configuration
// table has a flag of serve's, named in the flag's help.
func TestConfigTableHasFlags(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, _ := strings.Cut(string(readme), "## Configuration")
	table, _, _ = strings.Cut(table, "\n## ")
	var vars []string
	for _, line := range strings.Split(table, "\n") {
		if first, _, ok := strings.Cut(strings.TrimPrefix(line, "| "), " |"); ok && strings.HasPrefix(line, "| `") {
			for _, m := range regexp.MustCompile("`([A-Z_]+)`").FindAllStringSubmatch(first, -1) {
				vars = append(vars, m[1])
			}
		}
	}
	if len(vars) < 10 {
		t.Fatalf("found only %v in README's configuration table", vars)
	}
	_, help, _ := minipay(t, nil, "serve", "-h")
	for _, v := range vars {
		if !regexp.MustCompile(`\(` + v + `[),]`).MatchString(help) {
			t.Errorf("%s has no flag in serve -h", v)
		}
	}
}

// TestDevHelpShowsItsDatabase: dev's help shows the database dev really
// uses, its own unless DATABASE_URL says otherwise.
func TestDevHelpShowsItsDatabase(t *testing.T) {
	env := []string{"DATABASE_URL="}
	_, out, _ := minipay(t, env, "dev", "-h")
	if !strings.Contains(out, `(default "`+devDatabaseURL+`")`) {
		t.Fatalf("dev -h does not show %s:\n%s", devDatabaseURL, out)
	}
	_, out, _ = minipay(t, []string{"DATABASE_URL=postgres://somewhere/else"}, "dev", "-h")
	if !strings.Contains(out, `(default "postgres://somewhere/else")`) {
		t.Fatalf("dev -h ignores DATABASE_URL:\n%s", out)
	}
}

// TestPortClash: a port already taken stops serve and dev with the flag
// that picks another.
func TestPortClash(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().String()
	db := testdb.New(t).URL
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"serve", "--addr", taken}, "--addr"},
		{[]string{"dev", "--addr", "127.0.0.1:0", "--app-addr", taken}, "--app-addr"},
	} {
		code, _, stderr := minipay(t, []string{"DATABASE_URL=" + db}, tc.args...)
		if code != 1 || !strings.Contains(stderr, "already in use") || !strings.Contains(stderr, tc.flag) {
			t.Fatalf("%v on a taken port: %d %s", tc.args, code, stderr)
		}
	}
}

func TestParseCutoff(t *testing.T) {
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	now := time.Date(2026, 11, 28, 15, 0, 0, 0, shanghai)
	for in, want := range map[string]time.Time{
		"2026-11-28":                time.Date(2026, 11, 27, 16, 0, 0, 0, time.UTC),
		"2026-11-01":                time.Date(2026, 10, 31, 16, 0, 0, 0, time.UTC),
		"2026-11-28T06:00:00Z":      time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC),
		"2026-11-28T12:00:00+08:00": time.Date(2026, 11, 28, 4, 0, 0, 0, time.UTC),
	} {
		got, err := parseCutoff(in, shanghai, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("%s: %v %v, want %v", in, got, err, want)
		}
	}
	for in, hint := range map[string]string{
		"":                    "--cutoff is required",
		"28/11/2026":          "neither a date nor an RFC 3339 time",
		"2026-11-28 00:00":    "2026-11-28T00:00+08:00",
		"2026-11-29":          "in the future",
		"2026-11-28T16:00:00": "neither a date",
	} {
		_, err := parseCutoff(in, shanghai, now)
		if err == nil || !isUsage(err) || !strings.Contains(err.Error(), hint) || strings.Contains(err.Error(), "2006") {
			t.Errorf("%q: %v, want a usage error mentioning %q", in, err, hint)
		}
	}
}

type flagT = flag.Flag

// newFlagSet is c's flag set as the binary builds it.
func newFlagSet(c command) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	c.setup(fs, &env{getenv: os.Getenv, stdout: io.Discard, stderr: io.Discard})
	return fs
}

// TestLocalSecretConcurrent: listens starting at once for different apps
// each keep their secret; none is lost to another's write.
func TestLocalSecretConcurrent(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	const apps = 16
	got := make([]string, apps)
	var wg sync.WaitGroup
	for i := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, _, err := localSecret(fmt.Sprintf("app_%d", i))
			if err != nil {
				t.Error(err)
			}
			got[i] = s
		}()
	}
	wg.Wait()
	for i := range apps {
		if again, _, _ := localSecret(fmt.Sprintf("app_%d", i)); again != got[i] || !strings.HasPrefix(again, "whsec_") {
			t.Fatalf("app_%d: %q, then %q", i, got[i], again)
		}
	}
}
