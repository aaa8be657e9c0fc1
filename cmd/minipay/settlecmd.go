package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/minipay/minipay/internal/pgdb"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/settlement"
)

// settlementTool is what the finance commands share: the database and
// the settlement service over it.
type settlementTool struct {
	pool   *pgxpool.Pool
	ledger *ledger.Ledger
	svc    *settlement.Service
	loc    *time.Location
}

func openSettlement(ctx context.Context, cfg *config, log *slog.Logger) (*settlementTool, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	opts, err := settlementOptions(cfg, log)
	if err != nil {
		return nil, err
	}
	loc, err := cfg.location()
	if err != nil {
		return nil, err
	}
	pool, _, err := pgdb.Setup(ctx, cfg.DatabaseURL, int32(cfg.DBConns))
	if err != nil {
		return nil, err
	}
	l := ledger.New(pool, ledger.Options{})
	svc := settlement.New(pool, l)
	svc.SetOptions(opts)
	return &settlementTool{pool: pool, ledger: l, svc: svc, loc: loc}, nil
}

func (t *settlementTool) close() {
	t.ledger.Close()
	t.pool.Close()
}

func settleCommand(fs *flag.FlagSet, e *env) runFunc {
	cfg := newConfig(e.getenv)
	cfg.databaseFlags(fs, defaultDatabaseURL)
	cfg.settlementFlags(fs, false)
	cutoff := fs.String("cutoff", "", "what to settle: money matured by this time; a date (2026-11-28: 00:00 of that day in --settlement-tz) or an RFC 3339 time (required)")
	asJSON := fs.Bool("json", false, "print the run as JSON instead of a summary")
	return noArgs("settle", func(ctx context.Context) error {
		return settle(ctx, cfg, *cutoff, *asJSON, e.stdout, e.stderr)
	})
}

// parseCutoff reads --cutoff: a date means 00:00 of that day in loc.
// Errors say what to type, never Go's layout string.
func parseCutoff(v string, loc *time.Location, now time.Time) (time.Time, error) {
	today := now.In(loc).Format(time.DateOnly)
	example := fmt.Sprintf("a date such as --cutoff %s (00:00 that day in %s) or an RFC 3339 time such as --cutoff %s",
		today, loc, now.In(loc).Truncate(time.Hour).Format(time.RFC3339))
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, usageError("settle: --cutoff is required: %s", example)
	}
	t, err := time.ParseInLocation(time.DateOnly, v, loc)
	if err != nil {
		t, err = time.Parse(time.RFC3339Nano, v)
	}
	if err != nil {
		hint := ""
		if d, _, ok := strings.Cut(v, " "); ok {
			if _, e := time.Parse(time.DateOnly, d); e == nil {
				hint = fmt.Sprintf(" (a time needs a T and a zone: %sT%s+08:00)", d, strings.TrimSpace(v[len(d):]))
			}
		}
		return time.Time{}, usageError("settle: --cutoff %q is neither a date nor an RFC 3339 time%s; want %s", v, hint, example)
	}
	if t.After(now) {
		return time.Time{}, usageError("settle: --cutoff %s is in the future: a run pays out money that has already matured; try --cutoff %s", v, today)
	}
	return t, nil
}

// settle runs settlement for a cutoff (or finishes it) and prints what it
// did. A run that does not reconcile is an error.
func settle(ctx context.Context, cfg *config, cutoffFlag string, asJSON bool, stdout, stderr io.Writer) error {
	loc, err := cfg.location()
	if err != nil {
		return err
	}
	cutoff, err := parseCutoff(cutoffFlag, loc, time.Now())
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	t, err := openSettlement(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer t.close()
	if latest, ok, err := t.svc.LatestCompleted(ctx); err != nil {
		return err
	} else if ok && cutoff.Before(latest.Cutoff) {
		fmt.Fprintf(stderr, "warning: this cutoff (%s) is before that of the latest completed run %s (%s): that run already settled what matured by then, so this one finds only what it left\n",
			formatTime(cutoff, loc), latest.ID, formatTime(latest.Cutoff, loc))
	}
	stopProgress := t.reportProgress(ctx, stderr, 2*time.Second)
	run, created, err := t.svc.Settle(ctx, cutoff, true)
	stopProgress()
	if err != nil {
		return err
	}
	pending, err := t.svc.MaturingAfter(ctx, run.Cutoff, loc, 31)
	if err != nil {
		return err
	}
	if asJSON {
		out := runSummary(run)
		out["pending"] = pendingSummary(pending)
		if err := json.NewEncoder(stdout).Encode(out); err != nil {
			return err
		}
	} else {
		printRun(stdout, run, created, pending, loc)
	}
	if run.Status == settlement.RunMismatch {
		return fmt.Errorf("settlement run %s does not reconcile with the ledger and paid nothing: %s", run.ID, strings.Join(run.Mismatch, "; "))
	}
	return nil
}

// reportProgress prints, every interval while a run is going, how far it
// got, so a long run does not look hung. The returned func stops it.
func (t *settlementTool) reportProgress(ctx context.Context, w io.Writer, interval time.Duration) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			p, ok, err := t.svc.RunProgress(ctx)
			if err != nil || !ok {
				continue
			}
			if p.Step == "created" {
				fmt.Fprintf(w, "settling %s: summing and reconciling what matured by %s…\n", p.RunID, formatTime(p.Cutoff, t.loc))
			} else {
				fmt.Fprintf(w, "settling %s: %d of %d payouts posted\n", p.RunID, p.Posted, p.Planned)
			}
		}
	}()
	return func() { cancel(); <-done }
}

func formatTime(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("2006-01-02 15:04 MST")
}

// printRun is the human summary of a run.
func printRun(w io.Writer, run settlement.Run, created bool, pending []settlement.Maturing, loc *time.Location) {
	again := ""
	if !created {
		again = " (this cutoff had run before: nothing new was paid)"
	}
	fmt.Fprintf(w, "Settlement run %s, cutoff %s: %s%s\n", run.ID, formatTime(run.Cutoff, loc), run.Status, again)
	fmt.Fprintf(w, "  %d payout%s\n", run.PayoutCount, plural(run.PayoutCount))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	if len(run.Totals) > 0 {
		fmt.Fprintln(tw, "  currency\tgross\trefunds\tdisputes\tfees\tnet paid out\tpayouts\tcarried forward\t")
	}
	for _, t := range run.Totals {
		f := func(v int64) string { return ledger.FormatAmount(t.Currency, v) }
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t\n", t.Currency, f(t.Gross), f(t.Refunds), f(t.Disputes), f(t.Fees), f(t.Net),
			t.PayoutCount, f(t.CarriedForward))
	}
	tw.Flush()
	for _, t := range run.Totals {
		if t.CarriedCount > 0 {
			fmt.Fprintf(w, "  %s %s carried forward: %d developer%s below the minimum payout or negative\n",
				ledger.FormatAmount(t.Currency, t.CarriedForward), t.Currency, t.CarriedCount, plural(int(t.CarriedCount)))
		}
	}
	if len(pending) == 0 {
		fmt.Fprintln(w, "Nothing is left maturing.")
	} else {
		fmt.Fprintln(w, "Still pending, for later runs (net of fees and refunds):")
		for _, m := range pending {
			fmt.Fprintf(w, "  %s %s matures on %s (%d transaction%s)\n", ledger.FormatAmount(m.Currency, m.Net), m.Currency,
				m.Day.Format("2006-01-02 MST"), m.Count, plural(int(m.Count)))
		}
	}
	if run.Status == settlement.RunCompleted && run.PayoutCount > 0 {
		fmt.Fprintf(w, "Report: minipay export settlement --run %s --out %s.csv\n", run.ID, run.ID)
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// runSummary is the run as settle --json prints it.
func runSummary(run settlement.Run) map[string]any {
	totals := []map[string]any{}
	for _, t := range run.Totals {
		f := func(v int64) string { return ledger.FormatAmount(t.Currency, v) }
		totals = append(totals, map[string]any{"currency": t.Currency, "gross": f(t.Gross), "refunds": f(t.Refunds),
			"disputes": f(t.Disputes), "fees": f(t.Fees), "net": f(t.Net), "payout_count": t.PayoutCount, "carried_forward": f(t.CarriedForward)})
	}
	return map[string]any{"id": run.ID, "cutoff": run.Cutoff.UTC().Format(time.RFC3339Nano), "status": run.Status,
		"payouts": run.PayoutCount, "totals": totals, "mismatch": run.Mismatch}
}

func pendingSummary(pending []settlement.Maturing) []map[string]any {
	out := []map[string]any{}
	for _, m := range pending {
		out = append(out, map[string]any{"currency": m.Currency, "matures_on": m.Day.Format(time.DateOnly),
			"amount": ledger.FormatAmount(m.Currency, m.Net), "count": m.Count})
	}
	return out
}

func settlementListCommand(fs *flag.FlagSet, e *env) runFunc {
	cfg := newConfig(e.getenv)
	cfg.databaseFlags(fs, defaultDatabaseURL)
	cfg.settlementFlags(fs, false)
	limit := fs.Int("limit", 20, "how many runs, 1–100")
	after := fs.String("starting-after", "", "list runs older than this one (sr_…), to page")
	asJSON := fs.Bool("json", false, "print JSON, one run per line")
	return noArgs("settlement list", func(ctx context.Context) error {
		if *limit < 1 || *limit > 100 {
			return usageError("settlement list: --limit must be 1 to 100, got %d", *limit)
		}
		t, err := openSettlement(ctx, cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			return err
		}
		defer t.close()
		runs, more, err := t.svc.ListRuns(ctx, *limit, *after)
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(e.stdout)
			for _, r := range runs {
				if err := enc.Encode(runSummary(r)); err != nil {
					return err
				}
			}
			return nil
		}
		if len(runs) == 0 {
			fmt.Fprintln(e.stdout, "No settlement runs yet. Run one with: minipay settle --cutoff "+time.Now().In(t.loc).Format(time.DateOnly))
			return nil
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "RUN\tCUTOFF\tSTATUS\tPAYOUTS\tCOMPLETED")
		for _, r := range runs {
			completed := "-"
			if !r.Completed.IsZero() {
				completed = formatTime(r.Completed, t.loc)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", r.ID, formatTime(r.Cutoff, t.loc), r.Status, r.PayoutCount, completed)
		}
		tw.Flush()
		if more {
			fmt.Fprintf(e.stdout, "More: minipay settlement list --starting-after %s\n", runs[len(runs)-1].ID)
		}
		return nil
	})
}

func markPaidCommand(fs *flag.FlagSet, e *env) runFunc {
	cfg := newConfig(e.getenv)
	cfg.databaseFlags(fs, defaultDatabaseURL)
	asJSON := fs.Bool("json", false, "print the payout as JSON")
	return func(ctx context.Context, args []string) error {
		if len(args) != 1 || !strings.HasPrefix(args[0], "po_") {
			return usageError("payouts mark-paid: name one payout, e.g. minipay payouts mark-paid po_…")
		}
		t, err := openSettlement(ctx, cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			return err
		}
		defer t.close()
		before, err := t.svc.GetPayout(ctx, "", args[0])
		if err != nil {
			return err
		}
		p, err := t.svc.MarkPaid(ctx, args[0])
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(e.stdout).Encode(p.Public())
		}
		amount := ledger.FormatAmount(p.Currency, p.Amount) + " " + p.Currency
		if before.Status == settlement.PayoutPaid {
			fmt.Fprintf(e.stdout, "Payout %s (%s to %s) was already paid on %s; nothing changed.\n", p.ID, amount, p.DeveloperID, p.PaidAt.UTC().Format(time.RFC3339))
			return nil
		}
		fmt.Fprintf(e.stdout, "Payout %s (%s to %s) is paid; %s gets payout.paid.\n", p.ID, amount, p.DeveloperID, p.DeveloperID)
		return nil
	}
}

func exportCommand(fs *flag.FlagSet, e *env) runFunc {
	cfg := newConfig(e.getenv)
	cfg.databaseFlags(fs, defaultDatabaseURL)
	runID := fs.String("run", "", "the settlement run, sr_… (required; minipay settlement list shows them)")
	detail := fs.Bool("detail", false, "one row per balance transaction behind each payout, instead of one per payout")
	out := fs.String("out", "", "write to this file instead of standard output")
	force := fs.Bool("force", false, "with --out: replace the file if it exists")
	return noArgs("export settlement", func(ctx context.Context) error {
		if *runID == "" {
			return usageError("export settlement: --run is required (minipay settlement list shows the runs)")
		}
		return export(ctx, cfg, *runID, *detail, *out, *force, e.stdout)
	})
}

// export writes the run's CSV report, as GET
// /v1/settlement_runs/{id}/report.csv serves it. A file is written whole
// or not at all, and an existing one is replaced only with force.
func export(ctx context.Context, cfg *config, runID string, detail bool, out string, force bool, stdout io.Writer) error {
	if out != "" && !force {
		if _, err := os.Stat(out); err == nil {
			return fmt.Errorf("export settlement: %s already exists; add --force to replace it", out)
		}
	}
	if err := cfg.check(); err != nil {
		return err
	}
	pool, err := pgdb.Open(ctx, cfg.DatabaseURL, 4)
	if err != nil {
		return err
	}
	defer pool.Close()
	l := ledger.New(pool, ledger.Options{})
	defer l.Close()
	svc := settlement.New(pool, l)
	if out == "" {
		return svc.WriteReport(ctx, runID, detail, stdout)
	}
	if err := svc.CheckReport(ctx, runID); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(out), ".minipay-export-*")
	if err != nil {
		return fmt.Errorf("export settlement: %w", err)
	}
	defer os.Remove(f.Name()) // after a successful rename or link there is nothing left to remove
	if err := svc.WriteReport(ctx, runID, detail, f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("export settlement: %w", err)
	}
	if err := place(f.Name(), out, force); err != nil {
		return fmt.Errorf("export settlement: %w", err)
	}
	abs, _ := filepath.Abs(out)
	kind := "report"
	if detail {
		kind = "detail report"
	}
	fmt.Fprintf(stdout, "Wrote the %s of settlement run %s to %s\n", kind, runID, abs)
	return nil
}

// place moves the finished file tmp to out: a rename when replacing is
// allowed, a link otherwise, which fails rather than replace a file that
// appeared meanwhile.
func place(tmp, out string, force bool) error {
	if force {
		return os.Rename(tmp, out)
	}
	if err := os.Link(tmp, out); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s already exists; add --force to replace it", out)
		}
		return err
	}
	return nil
}
