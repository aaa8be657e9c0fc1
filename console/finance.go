package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/shopspring/decimal"

	"github.com/minipay/minipay/internal/download"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/settlement"
)

type totalsLine struct {
	Currency, Gross, Refunds, Disputes, Fees, Net, Carried string
	Payments, RefundCount, Payouts, CarriedCount           int64
}

func totalsLines(ts []settlement.Totals) []totalsLine {
	var out []totalsLine
	for _, t := range ts {
		out = append(out, totalsLine{Currency: t.Currency, Gross: money(t.Currency, t.Gross), Refunds: money(t.Currency, t.Refunds),
			Disputes: money(t.Currency, t.Disputes), Fees: money(t.Currency, t.Fees), Net: money(t.Currency, t.Net), Carried: money(t.Currency, t.CarriedForward),
			Payments: t.PaymentCount, RefundCount: t.RefundCount, Payouts: t.PayoutCount, CarriedCount: t.CarriedCount})
	}
	return out
}

type runRow struct {
	ID, Cutoff, Status, Created, Completed string
	Payouts                                int
	Totals                                 []totalsLine
}

// chartSeries is one currency's last 30 days, as the chart script reads
// it (amounts as decimal strings, as the API writes them).
type chartSeries struct {
	Currency string   `json:"currency"`
	Days     []string `json:"days"`
	Gross    []string `json:"gross"`
	Fees     []string `json:"fees"`
	Net      []string `json:"net"`
}

type dayRow struct{ Day, Currency, Gross, Refunds, Disputes, Fees, Net string }

type runsPage struct {
	Rows   []runRow
	Pager  pager
	Charts []chartSeries
	Days   []dayRow // the chart's numbers, for reading without the script
	From   string
	To     string
	Zone   string // the time zone a cutoff typed in the form is in
}

// chartDays is how many days the settlement chart covers.
const chartDays = 30

// runs lists settlement runs with their totals, draws the last 30 days'
// payouts per day, and has the form that runs settlement now.
func (s *Server) runs(w http.ResponseWriter, r *http.Request) error {
	limit, after := paging(r, "starting_after")
	list, more, err := s.Settlement.ListRuns(r.Context(), limit, after)
	if err != nil {
		return err
	}
	ids := make([]string, len(list))
	for i, run := range list {
		ids[i] = run.ID
	}
	totals, err := s.Settlement.RunTotals(r.Context(), ids)
	if err != nil {
		return err
	}
	pg := &runsPage{Zone: s.Location.String()}
	for _, run := range list {
		pg.Rows = append(pg.Rows, runRow{ID: run.ID, Cutoff: s.when(run.Cutoff), Status: run.Status, Created: s.when(run.Created),
			Completed: s.when(run.Completed), Payouts: run.PayoutCount, Totals: totalsLines(totals[run.ID])})
	}
	if len(list) > 0 {
		pg.Pager = newPager(r, "starting_after", more, list[len(list)-1].ID)
	}
	if err := s.chart(r.Context(), pg); err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "runs", "Settlement runs", pg)
	return nil
}

// chart fills the page's last 30 days: one series per currency, every day
// present (zero when no run paid out that day).
func (s *Server) chart(ctx context.Context, pg *runsPage) error {
	now := time.Now().In(s.Location)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, s.Location)
	from, to := today.AddDate(0, 0, 1-chartDays), today.AddDate(0, 0, 1)
	pg.From, pg.To = from.Format(time.DateOnly), today.Format(time.DateOnly)
	days, err := s.Settlement.DailyTotals(ctx, from, to, s.Location)
	if err != nil {
		return err
	}
	byCur := map[string]map[string]settlement.DayTotals{}
	var curs []string
	for _, d := range days {
		day := d.Day.Format(time.DateOnly)
		if byCur[d.Currency] == nil {
			byCur[d.Currency] = map[string]settlement.DayTotals{}
			curs = append(curs, d.Currency)
		}
		byCur[d.Currency][day] = d
		pg.Days = append(pg.Days, dayRow{Day: day, Currency: d.Currency, Gross: money(d.Currency, d.Gross),
			Refunds: money(d.Currency, d.Refunds), Disputes: money(d.Currency, d.Disputes), Fees: money(d.Currency, d.Fees),
			Net: money(d.Currency, d.Net)})
	}
	for _, cur := range curs {
		c := chartSeries{Currency: cur}
		for d := from; d.Before(to); d = d.AddDate(0, 0, 1) {
			t := byCur[cur][d.Format(time.DateOnly)]
			c.Days = append(c.Days, d.Format(time.DateOnly))
			c.Gross = append(c.Gross, ledger.FormatAmount(cur, t.Gross))
			c.Fees = append(c.Fees, ledger.FormatAmount(cur, t.Fees))
			c.Net = append(c.Net, ledger.FormatAmount(cur, t.Net))
		}
		pg.Charts = append(pg.Charts, c)
	}
	return nil
}

// createRun settles everything matured by the cutoff (now when empty), as
// POST /v1/settlement_runs does, and shows the run.
func (s *Server) createRun(w http.ResponseWriter, r *http.Request) error {
	cutoff := time.Now()
	if v := strings.TrimSpace(r.PostFormValue("cutoff")); v != "" {
		var err error
		if cutoff, err = s.parseCutoff(v); err != nil {
			return err
		}
	}
	// The run goes on if the browser gives up: stopping it halfway would
	// only leave it for the scheduler to resume.
	run, _, err := s.Settlement.Settle(context.WithoutCancel(r.Context()), cutoff, true)
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/console/settlement_runs/"+url.PathEscape(run.ID), http.StatusSeeOther)
	return nil
}

// parseCutoff reads a cutoff typed in the console's time zone (the form's
// datetime-local, with or without seconds) or in RFC 3339.
func (s *Server) parseCutoff(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, v, s.Location); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: %q is not a time", settlement.ErrCutoffInvalid, v)
}

type runPage struct {
	runRow
	Mismatch   []string
	PayoutRows []payoutRow
	Pager      pager
	Final      bool // the report can be downloaded
}

// run is one settlement run: totals, payouts and its report downloads.
func (s *Server) run(w http.ResponseWriter, r *http.Request) error {
	run, err := s.Settlement.GetRun(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	limit, after := paging(r, "starting_after")
	payouts, more, err := s.Settlement.ListPayouts(r.Context(), settlement.PayoutFilter{RunID: run.ID, Limit: limit, StartingAfter: after})
	if err != nil {
		return err
	}
	pg := &runPage{runRow: runRow{ID: run.ID, Cutoff: s.when(run.Cutoff), Status: run.Status, Created: s.when(run.Created),
		Completed: s.when(run.Completed), Payouts: run.PayoutCount, Totals: totalsLines(run.Totals)},
		Mismatch: run.Mismatch, Final: run.Status != settlement.RunRunning}
	for _, p := range payouts {
		pg.PayoutRows = append(pg.PayoutRows, s.payoutRowOf(p))
	}
	if len(payouts) > 0 {
		pg.Pager = newPager(r, "starting_after", more, payouts[len(payouts)-1].ID)
	}
	s.render(w, r, http.StatusOK, "run", "Settlement run "+run.ID, pg)
	return nil
}

// report streams a run's CSV report (?detail=true: every balance
// transaction), as GET /v1/settlement_runs/{id}/report.csv does.
func (s *Server) report(w http.ResponseWriter, r *http.Request) {
	runID, detail := chi.URLParam(r, "id"), r.URL.Query().Get("detail") == "true"
	if err := s.Settlement.CheckReport(r.Context(), runID); err != nil {
		s.fail(w, r, err)
		return
	}
	name := runID
	if detail {
		name += "-detail"
	}
	download.CSV(w, name, func(w http.ResponseWriter) error { return s.Settlement.WriteReport(r.Context(), runID, detail, w) },
		func(err error) { s.Log.Error("console settlement report", "run", runID, "err", err) })
}

type payoutsPage struct {
	Status string
	Rows   []payoutRow
	Pager  pager
	Note   string
}

var payoutNotes = map[string]string{"paid": "Marked paid:"}

// payouts lists payouts (in transit first by default), each in transit
// with a button that marks its bank transfer done.
func (s *Server) payouts(w http.ResponseWriter, r *http.Request) error {
	status := r.URL.Query().Get("status")
	switch status {
	case "", "all":
		status = ""
	case settlement.PayoutInTransit, settlement.PayoutPaid:
	default:
		return fmt.Errorf("%w: status %q", errFilter, status)
	}
	limit, after := paging(r, "starting_after")
	list, more, err := s.Settlement.ListPayouts(r.Context(), settlement.PayoutFilter{Status: status, Limit: limit, StartingAfter: after})
	if err != nil {
		return err
	}
	pg := &payoutsPage{Status: status, Note: flash(r.URL.Query(), payoutNotes)}
	for _, p := range list {
		pg.Rows = append(pg.Rows, s.payoutRowOf(p))
	}
	if len(list) > 0 {
		pg.Pager = newPager(r, "starting_after", more, list[len(list)-1].ID)
	}
	s.render(w, r, http.StatusOK, "payouts", "Payouts", pg)
	return nil
}

// markPaid records a payout's bank transfer, as POST
// /v1/payouts/{id}/mark_paid does.
func (s *Server) markPaid(w http.ResponseWriter, r *http.Request) error {
	p, err := s.Settlement.MarkPaid(context.WithoutCancel(r.Context()), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	back := "/console/payouts"
	if v := r.PostFormValue("status"); v == settlement.PayoutInTransit || v == settlement.PayoutPaid {
		back += "?status=" + v + "&"
	} else {
		back += "?"
	}
	http.Redirect(w, r, back+"done=paid&id="+url.QueryEscape(p.ID), http.StatusSeeOther)
	return nil
}

type trialRow struct {
	Currency, Debits, Credits, DebitsPending, CreditsPending string
	Balanced                                                 bool
}

type trialPage struct {
	Balanced bool
	Rows     []trialRow
}

// trialBalance shows the ledger's trial balance per currency.
func (s *Server) trialBalance(w http.ResponseWriter, r *http.Request) error {
	tb, err := s.Ledger.TrialBalance(r.Context())
	if err != nil {
		return err
	}
	pg := &trialPage{Balanced: tb.Balanced}
	for _, c := range tb.Currencies {
		f := func(d decimal.Decimal) string { return ledger.FormatTotal(c.Currency, d) + " " + c.Currency }
		pg.Rows = append(pg.Rows, trialRow{Currency: c.Currency, Debits: f(c.Debits), Credits: f(c.Credits),
			DebitsPending: f(c.DebitsPending), CreditsPending: f(c.CreditsPending),
			Balanced: c.Debits.Equal(c.Credits) && c.DebitsPending.Equal(c.CreditsPending)})
	}
	s.render(w, r, http.StatusOK, "ledger", "Trial balance", pg)
	return nil
}

type backlogRow struct {
	Endpoint, App, URL, Status, DisabledReason, FailingSince, OldestDue, LastOutcome, LastAttempt, Breaker string
	Pending, Due                                                                                           int64
}

type backlogPage struct {
	Pending, Due int64
	OldestDue    string
	Rows         []backlogRow
	Pager        pager
}

// backlog shows the webhook delivery queue and the endpoints behind it:
// waiting deliveries, failing endpoints and this replica's circuit
// breakers.
func (s *Server) backlog(w http.ResponseWriter, r *http.Request) error {
	b, err := s.Webhooks.Backlog(r.Context())
	if err != nil {
		return err
	}
	limit, after := paging(r, "starting_after")
	eps, more, err := s.Webhooks.TroubledEndpoints(r.Context(), limit, after)
	if err != nil {
		return err
	}
	breakers := s.Webhooks.Breakers()
	pg := &backlogPage{Pending: b.Pending, Due: b.Due, OldestDue: b.OldestDue.Round(time.Second).String()}
	for _, e := range eps {
		row := backlogRow{Endpoint: e.EndpointID, App: e.AppID, URL: e.URL, Status: e.Status, DisabledReason: e.DisabledReason,
			FailingSince: s.when(e.FailingSince), OldestDue: s.when(e.OldestDue), LastOutcome: e.LastOutcome,
			LastAttempt: s.when(e.LastAttemptAt), Breaker: breakers[e.EndpointID], Pending: e.Pending, Due: e.Due}
		if row.Breaker == "" {
			row.Breaker = "—"
		}
		pg.Rows = append(pg.Rows, row)
	}
	if len(eps) > 0 {
		pg.Pager = newPager(r, "starting_after", more, eps[len(eps)-1].EndpointID)
	}
	s.render(w, r, http.StatusOK, "backlog", "Webhook backlog", pg)
	return nil
}
