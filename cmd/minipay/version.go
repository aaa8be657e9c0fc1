package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
)

// version and commit are set at link time by release builds
// (-ldflags "-X main.version=v1.2.3 -X main.commit=abc1234"); otherwise
// they come from what the Go toolchain stamped into the binary.
var version, commit string

// buildVersion returns the version, the commit (with "+dirty" when built
// from uncommitted changes) and the commit's time, as well as known.
func buildVersion() (ver, rev, at string) {
	ver, rev = version, commit
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return orUnknown(ver), orUnknown(rev), ""
	}
	if ver == "" {
		ver = info.Main.Version // "(devel)" for a build from a checkout
	}
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			if rev == "" {
				rev = s.Value
			}
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty && commit == "" {
		rev += "+dirty"
	}
	return orUnknown(ver), orUnknown(rev), at
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func printVersion(w io.Writer) error {
	ver, rev, at := buildVersion()
	line := fmt.Sprintf("minipay %s (commit %s", ver, rev)
	if at != "" {
		line += ", " + at
	}
	_, err := fmt.Fprintln(w, line+")")
	return err
}

func versionCommand(fs *flag.FlagSet, e *env) runFunc {
	return noArgs("version", func(context.Context) error { return printVersion(e.stdout) })
}
