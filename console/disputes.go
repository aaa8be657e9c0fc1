package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/apps"
	"github.com/minipay/minipay/disputes"
	"github.com/minipay/minipay/webhooks"
)

// disputeStatuses are the list's status filter, in the order a dispute
// goes through them.
var disputeStatuses = []string{disputes.StatusNeedsResponse, disputes.StatusUnderReview, disputes.StatusWon, disputes.StatusLost}

// paymentDisputesMax is how many of a payment's disputes its page shows;
// the rest are a link to the disputes list filtered by the payment.
const paymentDisputesMax = 10

type disputeRow struct {
	ID, Payment, App, Amount, Reason, Status, DueBy, Created string
	AwaitsAnswer                                             bool // needs a response and can still get one
}

func (s *Server) disputeRowOf(d disputes.Dispute, at time.Time) disputeRow {
	return disputeRow{ID: d.ID, Payment: d.PaymentID, App: d.AppID, Amount: money(d.Currency, d.Amount),
		Reason: d.Reason, Status: d.Status, DueBy: s.when(d.EvidenceDueBy), Created: s.when(d.Created),
		AwaitsAnswer: d.Answerable(at)}
}

// disputeScope is the app whose disputes the signed-in key reads: an app
// key its own, the admin key any (""), as the API's GET /v1/disputes.
func disputeScope(r *http.Request) string {
	if p := who(r); p.Kind == apps.KindSecret {
		return p.AppID
	}
	return ""
}

type disputesPage struct {
	Admin                bool
	Status, App, Payment string
	Statuses             []string
	Rows                 []disputeRow
	Pager                pager
}

// disputeList lists disputes, newest first, by status (and for the
// admin, by app): an app key sees its app's, the admin every app's.
func (s *Server) disputeList(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	pg := &disputesPage{Admin: who(r).Kind == apps.KindAdmin, Status: q.Get("status"), Payment: q.Get("payment"),
		Statuses: disputeStatuses}
	f := disputes.Filter{AppID: disputeScope(r), Status: pg.Status, PaymentID: pg.Payment}
	if pg.Admin {
		pg.App = q.Get("app")
		f.AppID = pg.App
	}
	f.Limit, f.StartingAfter = paging(r, "starting_after")
	list, more, err := s.Disputes.List(r.Context(), f)
	if err != nil {
		return err
	}
	at := time.Now()
	for _, d := range list {
		pg.Rows = append(pg.Rows, s.disputeRowOf(d, at))
	}
	if len(list) > 0 {
		pg.Pager = newPager(r, "starting_after", more, list[len(list)-1].ID)
	}
	s.render(w, r, http.StatusOK, "disputes", "Disputes", pg)
	return nil
}

type disputePage struct {
	disputeRow
	Admin                                       bool
	Developer, Customer, Description, Currency  string
	Outcome, ClosedBy, RespondedAt, ClosedAt    string
	FeeRefunded, TimeLeft                       string
	Evidence                                    *disputes.Evidence
	PaymentAmount, PaymentRefunded, PaymentPaid string
	PaymentStatus                               string
	Closable                                    bool // open: the platform can rule
	Events                                      []eventRow
	EventPager                                  pager
	Note, Error                                 string
	FormText, FormFiles, FormNote, FormOutcome  string // what was typed, shown again with an error
}

var disputeNotes = map[string]string{
	"responded": "Evidence sent: the dispute is under review.",
	"accepted":  "Accepted: the dispute is lost and the amount goes back to the customer.",
	"won":       "Ruled won: the amount goes back to the developer.",
	"lost":      "Ruled lost: the amount goes back to the customer, with the platform's fee share.",
}

// dispute is one dispute's page: the payment, the user's complaint, the
// deadline, the developer's evidence and events; for the app the answer
// forms while it can answer, for the admin the ruling form while it is
// open. Another app's dispute is not found.
func (s *Server) dispute(w http.ResponseWriter, r *http.Request) error {
	pg, err := s.disputePage(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	pg.Note = flash(r.URL.Query(), disputeNotes)
	s.render(w, r, http.StatusOK, "dispute", "Dispute "+pg.ID, pg)
	return nil
}

func (s *Server) disputePage(r *http.Request, id string) (*disputePage, error) {
	scope := disputeScope(r)
	d, err := s.Disputes.Get(r.Context(), scope, id)
	if err != nil {
		return nil, err
	}
	pay, err := s.Payments.Get(r.Context(), scope, d.PaymentID)
	if err != nil {
		return nil, fmt.Errorf("payment of dispute %s: %w", d.ID, err)
	}
	at := time.Now()
	pg := &disputePage{disputeRow: s.disputeRowOf(d, at), Admin: scope == "", Developer: d.DeveloperID,
		Customer: d.Customer, Description: d.Description, Currency: d.Currency, Outcome: d.Outcome, ClosedBy: d.ClosedBy,
		RespondedAt: s.when(d.RespondedAt), ClosedAt: s.when(d.ClosedAt), FeeRefunded: money(d.Currency, d.FeeRefunded),
		Evidence: d.Evidence, Closable: d.Open(),
		PaymentAmount: money(pay.Currency, pay.Amount), PaymentRefunded: money(pay.Currency, pay.AmountRefunded),
		PaymentPaid: s.when(pay.CapturedAt), PaymentStatus: pay.Status()}
	if pg.AwaitsAnswer {
		pg.TimeLeft = timeLeft(d.EvidenceDueBy.Sub(at))
	}
	limit, after := paging(r, "events_after")
	events, more, err := s.Webhooks.ObjectEvents(r.Context(), webhooks.Owner{AppID: d.AppID, DeveloperID: d.DeveloperID},
		[]string{d.ID}, limit, after)
	if err != nil {
		return nil, err
	}
	for _, e := range events {
		pg.Events = append(pg.Events, eventRow{ID: e.ID, Type: e.Type, Object: e.ObjectID, Created: s.when(e.Created)})
	}
	if len(events) > 0 {
		pg.EventPager = newPager(r, "events_after", more, events[len(events)-1].ID)
	}
	return pg, nil
}

// timeLeft says how long until a deadline d from now, to the hour.
func timeLeft(d time.Duration) string {
	h := int(d.Hours())
	switch {
	case h >= 48:
		return fmt.Sprintf("%d days %d hours left", h/24, h%24)
	case h >= 1:
		return fmt.Sprintf("%d hours left", h)
	default:
		return "less than an hour left"
	}
}

// Errors of the dispute forms themselves (the domain's are shown as the
// API states them).
var (
	errAcceptUnconfirmed = minipay.NewError(minipay.KindInvalid, "accept_unconfirmed",
		"Tick the box to confirm that you accept losing this dispute.")
	errNoEvidence = minipay.NewError(minipay.KindInvalid, "evidence_missing",
		"Write your evidence before sending it, or accept the dispute.")
)

// respond is the developer's answer, as POST /v1/disputes/{id}/respond:
// evidence (text, and file references one per line) puts the dispute
// under review; accept (with an optional note, kept as its evidence)
// loses it at once, and only with the box ticked that says so.
func (s *Server) respond(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	p := disputes.RespondParams{AppID: who(r).AppID, DisputeID: id, Accept: r.PostFormValue("accept") == "true"}
	text, filesText, note := r.PostFormValue("evidence_text"), r.PostFormValue("evidence_files"), r.PostFormValue("note")
	switch {
	case !p.Accept:
		p.Evidence = &disputes.Evidence{Text: text, Files: lines(filesText)}
	case note != "":
		p.Evidence = &disputes.Evidence{Text: note}
	}
	var err error
	if p.Accept && r.PostFormValue("confirm") != "yes" {
		err = errAcceptUnconfirmed
	} else {
		_, err = s.Disputes.Respond(context.WithoutCancel(r.Context()), p)
		if errors.Is(err, disputes.ErrMissing) && !p.Accept {
			err = errNoEvidence
		}
	}
	if err != nil {
		return s.disputeFormFailed(w, r, id, err, func(pg *disputePage) {
			if p.Accept {
				pg.FormNote = note
			} else {
				pg.FormText, pg.FormFiles = text, filesText
			}
		})
	}
	done := "responded"
	if p.Accept {
		done = "accepted"
	}
	http.Redirect(w, r, "/console/disputes/"+url.PathEscape(id)+"?done="+done, http.StatusSeeOther)
	return nil
}

// closeDispute is the platform's ruling, as POST /v1/disputes/{id}/close.
func (s *Server) closeDispute(w http.ResponseWriter, r *http.Request) error {
	id, outcome := chi.URLParam(r, "id"), r.PostFormValue("outcome")
	d, err := s.Disputes.Close(context.WithoutCancel(r.Context()), id, outcome)
	if err != nil {
		return s.disputeFormFailed(w, r, id, err, func(pg *disputePage) { pg.FormOutcome = outcome })
	}
	http.Redirect(w, r, "/console/disputes/"+url.PathEscape(d.ID)+"?done="+url.QueryEscape(d.Outcome), http.StatusSeeOther)
	return nil
}

// disputeFormFailed shows the dispute's page again after a refused form,
// with why and what was typed (keep); a dispute not found (or another
// app's) and faults are the error page.
func (s *Server) disputeFormFailed(w http.ResponseWriter, r *http.Request, id string, err error, keep func(*disputePage)) error {
	var c interface{ Kind() string }
	if !errors.As(err, &c) || errors.Is(err, disputes.ErrNotFound) {
		return err
	}
	pg, perr := s.disputePage(r, id)
	if perr != nil {
		return perr
	}
	pg.Error = message(r, err)
	keep(pg)
	s.render(w, r, statusOf(err), "dispute", "Dispute "+pg.ID, pg)
	return nil
}

// lines are the non-blank lines of s, trimmed.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
