package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// A command is one subcommand of the binary. Adding a subcommand is one
// entry in commands plus the function that sets it up.
type command struct {
	// name is the words that select the command: "settle", or
	// "settlement list" for a command of a group.
	name string
	// summary says in one line what the command does; it heads the
	// command's help and its line in "minipay help".
	summary string
	// args is what follows the name in the usage line, flags included.
	args string
	// example is one invocation a person can copy, or "".
	example string
	// more, if set, adds a paragraph to the help (what the arguments may be).
	more func() string
	// setup registers the command's own flags on fs and returns the
	// function that runs it with what is left after the flags.
	setup func(fs *flag.FlagSet, e *env) runFunc
}

// runFunc runs a command with its arguments after the flags.
type runFunc func(ctx context.Context, args []string) error

// env is what a command gets from the process.
type env struct {
	getenv         func(string) string
	stdout, stderr io.Writer
}

// commands is every subcommand, in the order "minipay help" lists them.
// (It is filled in init because help looks commands up.)
var commands []command

func init() {
	commands = []command{
		{name: "serve", summary: "Run the HTTP API and its background workers (expiry, webhooks, settlement).",
			args: "[flags]", example: "MINIPAY_ADDR=:8080 minipay serve", setup: serveCommand},
		{name: "migrate", summary: "Apply the database migrations (up, the default) or list them (status).",
			args: "[up|status] [flags]", example: "minipay migrate status", setup: migrateCommand},
		{name: "dev", summary: "Run the API with a demo host page, mini-app and backend on this machine, for building against.",
			args: "[flags]", example: "minipay dev", setup: devCommand},
		{name: "listen", summary: "Forward an app's events to a local URL, signed with a local secret, as they happen.",
			args: "--forward-to URL [flags]", example: "minipay listen --api-key sk_… --forward-to http://localhost:4242/webhooks", setup: listenCommand},
		{name: "trigger", summary: "Make real objects in a sandbox so that an event of the given type happens.",
			args: "EVENT_TYPE [flags]", example: "minipay trigger checkout.session.completed --api-key sk_…", setup: triggerCommand,
			more: func() string {
				return "event types (sandboxes only: MINIPAY_SANDBOX=true, as minipay dev sets):\n" + triggerTypes()
			}},
		{name: "settle", summary: "Run (or finish) the settlement run of a cutoff and summarize what it paid out.",
			args: "--cutoff DATE|TIME [flags]", example: "minipay settle --cutoff 2026-11-28", setup: settleCommand},
		{name: "settlement list", summary: "List settlement runs, newest first.",
			args: "[flags]", example: "minipay settlement list --limit 5", setup: settlementListCommand},
		{name: "payouts mark-paid", summary: "Mark a payout paid once its bank transfer has landed; the developer gets payout.paid.",
			args: "PAYOUT_ID [flags]", example: "minipay payouts mark-paid po_…", setup: markPaidCommand},
		{name: "export settlement", summary: "Write a settlement run's finance report as CSV.",
			args: "--run ID [--detail] [--out FILE [--force]] [flags]", example: "minipay export settlement --run sr_… --out report.csv", setup: exportCommand},
		{name: "keys revoke", summary: "Revoke an operator key (admin or host) now, for a key that leaked.",
			args: "(--key KEY | --key - | --id ID) [--force] [flags]", example: "printenv OLD_ADMIN_KEY | minipay keys revoke --key -",
			setup: keysRevokeCommand},
		{name: "bench", summary: "Measure throughput and latency beside a pgbench yardstick.",
			args: "KIND [flags]", example: "minipay bench ledger --duration 20s", setup: benchCommand},
		{name: "version", summary: "Print the version and commit this binary was built from.",
			args: "", example: "", setup: versionCommand},
		{name: "help", summary: "Show what a command does and its flags.",
			args: "[COMMAND]", example: "minipay help settle", setup: helpCommand},
	}
}

// usageErr is a mistake in the command line, with what to type instead;
// main exits 2 for it, 1 for every other error.
type usageErr struct{ msg string }

func (e *usageErr) Error() string { return e.msg }

func usageError(format string, args ...any) error {
	return &usageErr{fmt.Sprintf(format, args...)}
}

// isUsage reports whether err is a mistake in the command line.
func isUsage(err error) bool {
	var u *usageErr
	return errors.As(err, &u)
}

// run is the whole program: main only supplies the process's context,
// arguments, environment and output streams, so tests can call run directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	e := &env{getenv: getenv, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		printOverview(stderr)
		return usageError("name a command")
	}
	switch args[0] {
	case "-h", "-help", "--help":
		printOverview(stdout)
		return nil
	case "-version", "--version":
		return printVersion(stdout)
	}
	cmd, rest, err := lookup(args)
	if err != nil {
		return err
	}
	return cmd.exec(ctx, e, rest)
}

// lookup finds the command args name: the longest match of its words.
func lookup(args []string) (*command, []string, error) {
	var best *command
	bestWords := 0
	for i := range commands {
		words := strings.Fields(commands[i].name)
		if len(words) <= len(args) && len(words) > bestWords && equalWords(words, args[:len(words)]) {
			best, bestWords = &commands[i], len(words)
		}
	}
	if best != nil {
		return best, args[bestWords:], nil
	}
	if group := groupOf(args[0]); len(group) > 0 {
		return nil, nil, usageError("%q needs a subcommand: %s", args[0], strings.Join(group, ", "))
	}
	return nil, nil, usageError("unknown command %q; run \"minipay help\" for the list", args[0])
}

func equalWords(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// groupOf lists the commands whose first word is word and that have more.
func groupOf(word string) []string {
	var out []string
	for _, c := range commands {
		if first, _, more := strings.Cut(c.name, " "); more && first == word {
			out = append(out, "minipay "+c.name)
		}
	}
	return out
}

// exec parses the command's flags and runs it. -h and --help print the
// command's help to stdout and succeed.
func (c *command) exec(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, help is printed below
	runIt := c.setup(fs, e)
	positional, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		c.printHelp(e.stdout, fs)
		return nil
	}
	if err != nil {
		return usageError("%s: %v; run \"minipay %s -h\" for its flags", c.name, err, c.name)
	}
	return runIt(ctx, positional)
}

// parseInterspersed parses flags wherever they stand among the arguments
// ("trigger refund.succeeded --api-key sk_…" as well as flags first) and
// returns the arguments that are not flags. After "--" everything is an
// argument.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// printHelp writes the command's summary, usage line, flags and example.
func (c *command) printHelp(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "%s\n\nusage: minipay %s %s\n", c.summary, c.name, c.args)
	var flags strings.Builder
	fs.SetOutput(&flags)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	if flags.Len() > 0 {
		fmt.Fprintf(w, "\nflags:\n%s", flags.String())
	}
	if c.more != nil {
		fmt.Fprintf(w, "\n%s\n", c.more())
	}
	if c.example != "" {
		fmt.Fprintf(w, "\nexample:\n  %s\n", c.example)
	}
}

// printOverview lists every command with its summary.
func printOverview(w io.Writer) {
	fmt.Fprint(w, "minipay: payments and monetization for mini-apps\n\nusage: minipay COMMAND [flags]\n\ncommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-19s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Configuration comes from the environment (DATABASE_URL, MINIPAY_ADDR, …);
every variable has a flag of the same meaning, which overrides it.
Run "minipay help COMMAND" or "minipay COMMAND -h" for a command's flags.
"minipay --version" prints the version.
`)
}

func helpCommand(fs *flag.FlagSet, e *env) runFunc {
	return func(ctx context.Context, args []string) error {
		if len(args) == 0 {
			printOverview(e.stdout)
			return nil
		}
		cmd, rest, err := lookup(args)
		if err != nil {
			return err
		}
		if len(rest) > 0 {
			return usageError("help: unexpected %q after %q", strings.Join(rest, " "), cmd.name)
		}
		sub := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
		cmd.setup(sub, e)
		cmd.printHelp(e.stdout, sub)
		return nil
	}
}

// noArgs wraps fn for commands that take no arguments after their flags.
func noArgs(name string, fn func(ctx context.Context) error) runFunc {
	return func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return usageError("%s: unexpected argument %q; run \"minipay %s -h\"", name, args[0], name)
		}
		return fn(ctx)
	}
}
