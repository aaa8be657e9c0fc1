package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/apps"
	"github.com/minipay/minipay/internal/download"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/settlement"
)

// settlementAdminRoutes are finance's: runs, reports, marking payouts paid.
func (s *Server) settlementAdminRoutes(r chi.Router) {
	r.Post("/settlement_runs", s.h(s.createSettlementRun))
	r.Get("/settlement_runs", s.h(s.listSettlementRuns))
	r.Get("/settlement_runs/{id}", s.h(s.getSettlementRun))
	r.Get("/settlement_runs/{id}/report.csv", s.settlementReport)
	r.Post("/payouts/{id}/mark_paid", s.h(s.markPayoutPaid))
}

// payoutRoutes serve developers (their own payouts) and admins (all).
func (s *Server) payoutRoutes(r chi.Router) {
	r.With(s.allow(apps.KindAdmin, apps.KindSecret)).Get("/payouts", s.h(s.listPayouts))
	r.With(s.allow(apps.KindAdmin, apps.KindSecret)).Get("/payouts/{id}", s.h(s.getPayout))
}

type totalsJSON struct {
	Currency            string `json:"currency"`
	Gross               string `json:"gross"`
	Refunds             string `json:"refunds"`
	Disputes            string `json:"disputes"`
	Fees                string `json:"fees"`
	Net                 string `json:"net"`
	PaymentCount        int64  `json:"payment_count"`
	RefundCount         int64  `json:"refund_count"`
	PayoutCount         int64  `json:"payout_count"`
	CarriedForward      string `json:"carried_forward"`
	CarriedForwardCount int64  `json:"carried_forward_count"`
}

type settlementRunJSON struct {
	ID        string       `json:"id"`
	Object    string       `json:"object"`
	Cutoff    string       `json:"cutoff"`
	Status    string       `json:"status"`
	Payouts   int          `json:"payouts"`
	Totals    []totalsJSON `json:"totals"`
	Mismatch  []string     `json:"mismatch"`
	Created   string       `json:"created"`
	Completed *string      `json:"completed"`
	Version   int          `json:"version"`
}

func runOut(run settlement.Run) settlementRunJSON {
	out := settlementRunJSON{ID: run.ID, Object: "settlement_run", Cutoff: minipay.Timestamp(run.Cutoff), Status: run.Status,
		Payouts: run.PayoutCount, Totals: []totalsJSON{}, Mismatch: run.Mismatch, Created: minipay.Timestamp(run.Created),
		Completed: optionalTimestamp(run.Completed), Version: run.Version}
	if out.Mismatch == nil {
		out.Mismatch = []string{}
	}
	for _, t := range run.Totals {
		f := func(v int64) string { return ledger.FormatAmount(t.Currency, v) }
		out.Totals = append(out.Totals, totalsJSON{Currency: t.Currency, Gross: f(t.Gross), Refunds: f(t.Refunds),
			Disputes: f(t.Disputes), Fees: f(t.Fees), Net: f(t.Net), PaymentCount: t.PaymentCount, RefundCount: t.RefundCount,
			PayoutCount: t.PayoutCount, CarriedForward: f(t.CarriedForward), CarriedForwardCount: t.CarriedCount})
	}
	return out
}

func (s *Server) createSettlementRun(r *http.Request) (int, any, error) {
	var in struct {
		Cutoff string `json:"cutoff"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if in.Cutoff == "" {
		return 0, nil, minipay.Field("cutoff", fmt.Errorf("%w: cutoff is required", settlement.ErrCutoffInvalid))
	}
	cutoff, err := time.Parse(time.RFC3339Nano, in.Cutoff)
	if err != nil {
		return 0, nil, minipay.Field("cutoff", fmt.Errorf("%w: %q is not RFC 3339", settlement.ErrCutoffInvalid, in.Cutoff))
	}
	// The run goes on if the client hangs up: stopping it halfway would only
	// leave it for the scheduler to resume.
	run, created, err := s.Settlement.Settle(withoutCancel(r), cutoff, true)
	if errors.Is(err, settlement.ErrCutoffInvalid) {
		return 0, nil, minipay.Field("cutoff", err)
	}
	if err != nil {
		return 0, nil, err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return status, runOut(run), nil
}

func (s *Server) listSettlementRuns(r *http.Request) (int, any, error) {
	limit, after, err := pageParams(r)
	if err != nil {
		return 0, nil, err
	}
	runs, more, err := s.Settlement.ListRuns(r.Context(), limit, after)
	if err != nil {
		return 0, nil, minipay.Field("starting_after", err)
	}
	return http.StatusOK, listOf(runs, more, runOut), nil
}

func (s *Server) getSettlementRun(r *http.Request) (int, any, error) {
	run, err := s.Settlement.GetRun(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, runOut(run), nil
}

// settlementReport streams a run's CSV report (?detail=true for every
// balance transaction). Errors found before the first byte are JSON errors;
// a failure while streaming aborts the connection, so a client never takes
// a truncated file for a whole one.
func (s *Server) settlementReport(w http.ResponseWriter, r *http.Request) {
	runID := chi.URLParam(r, "id")
	detail := false
	switch v := r.URL.Query().Get("detail"); v {
	case "", "false":
	case "true":
		detail = true
	default:
		s.writeError(w, r, minipay.Field("detail", fmt.Errorf("%w: detail must be true or false", errInvalidParam)))
		return
	}
	if err := s.Settlement.CheckReport(r.Context(), runID); err != nil {
		s.writeError(w, r, err)
		return
	}
	name := runID
	if detail {
		name += "-detail"
	}
	download.CSV(w, name, func(w http.ResponseWriter) error { return s.Settlement.WriteReport(r.Context(), runID, detail, w) },
		func(err error) {
			s.Log.Error("settlement report", "request_id", requestID(r.Context()), "run", runID, "err", err)
		})
}

// payoutOwner is the developer whose payouts the caller may see: its own
// for an app key, everyone's ("") for an admin.
func payoutOwner(r *http.Request) string {
	if p := principal(r); p.Kind == apps.KindSecret {
		return p.DeveloperID
	}
	return ""
}

func (s *Server) listPayouts(r *http.Request) (int, any, error) {
	limit, after, err := pageParams(r)
	if err != nil {
		return 0, nil, err
	}
	f := settlement.PayoutFilter{DeveloperID: payoutOwner(r), RunID: r.URL.Query().Get("settlement_run"),
		Limit: limit, StartingAfter: after}
	if f.DeveloperID == "" {
		f.DeveloperID = r.URL.Query().Get("developer")
	}
	ps, more, err := s.Settlement.ListPayouts(r.Context(), f)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, listOf(ps, more, settlement.Payout.Public), nil
}

func (s *Server) getPayout(r *http.Request) (int, any, error) {
	p, err := s.Settlement.GetPayout(r.Context(), payoutOwner(r), chi.URLParam(r, "id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, p.Public(), nil
}

func (s *Server) markPayoutPaid(r *http.Request) (int, any, error) {
	if err := decode(r, &struct{}{}); err != nil {
		return 0, nil, err
	}
	p, err := s.Settlement.MarkPaid(withoutCancel(r), chi.URLParam(r, "id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, p.Public(), nil
}

// withoutCancel is the request's context, minus its cancellation: for work
// that must not stop halfway because a client hung up.
func withoutCancel(r *http.Request) context.Context { return context.WithoutCancel(r.Context()) }
