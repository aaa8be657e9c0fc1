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
	"github.com/minipay/minipay/checkout"
	"github.com/minipay/minipay/internal/null"
	"github.com/minipay/minipay/ledger"
	"github.com/minipay/minipay/payments"
	"github.com/minipay/minipay/settlement"
)

var timeNow = time.Now

func (s *Server) hostRoutes(r chi.Router) {
	r.Post("/wallets/{user_id}/topups", s.h(s.topUp))
	r.Get("/wallets/{user_id}", s.h(s.getWallet))
	r.Post("/checkout/sessions/{id}/confirm", s.h(s.confirm))
}

func (s *Server) checkoutRoutes(r chi.Router) {
	r.Post("/checkout/sessions", s.h(s.createSession))
	r.Get("/checkout/sessions", s.h(s.listSessions))
	r.Post("/checkout/sessions/{id}/cancel", s.h(s.cancelSession))
	r.Post("/checkout/sessions/{id}/capture", s.h(s.captureSession))
	r.Post("/checkout/sessions/{id}/void", s.h(s.voidSession))
	r.Post("/refunds", s.h(s.createRefund))
	r.Get("/refunds/{id}", s.h(s.getRefund))
	r.Get("/balance", s.h(s.getBalance))
	r.Get("/balance_transactions", s.h(s.listBalanceTransactions))
}

type walletJSON struct {
	Object   string              `json:"object"`
	UserID   string              `json:"user_id"`
	Balances []walletBalanceJSON `json:"balances"`
}

type walletBalanceJSON struct {
	Currency  string `json:"currency"`
	Available string `json:"available"`
	Held      string `json:"held"`
}

func walletOut(w checkout.Wallet) walletJSON {
	out := walletJSON{Object: "wallet", UserID: w.UserID, Balances: []walletBalanceJSON{}}
	for _, b := range w.Balances {
		out.Balances = append(out.Balances, walletBalanceJSON{Currency: b.Currency,
			Available: ledger.FormatAmount(b.Currency, b.Available), Held: ledger.FormatAmount(b.Currency, b.Held)})
	}
	return out
}

func (s *Server) topUp(r *http.Request) (int, any, error) {
	var in struct {
		Amount   string `json:"amount"`
		Currency string `json:"currency"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	w, err := s.Checkout.TopUp(r.Context(), chi.URLParam(r, "user_id"), in.Amount, in.Currency, objectID(r, "topup"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, walletOut(w), nil
}

func (s *Server) getWallet(r *http.Request) (int, any, error) {
	w, err := s.Checkout.GetWallet(r.Context(), chi.URLParam(r, "user_id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, walletOut(w), nil
}

func (s *Server) confirm(r *http.Request) (int, any, error) {
	var in struct {
		UserID       string `json:"user_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	sess, err := s.Checkout.Confirm(r.Context(), chi.URLParam(r, "id"), in.UserID, in.ClientSecret)
	if err != nil {
		return 0, nil, err
	}
	body, err := sess.PublicJSON() // as its event carries it, encoded once
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, body, nil
}

func (s *Server) createSession(r *http.Request) (int, any, error) {
	var in struct {
		Amount    string `json:"amount"`
		LineItems []struct {
			Name       string `json:"name"`
			UnitAmount string `json:"unit_amount"`
			Quantity   int64  `json:"quantity"`
		} `json:"line_items"`
		Currency          string            `json:"currency"`
		Option            string            `json:"option"`
		ClientReferenceID string            `json:"client_reference_id"`
		ExpiresIn         int64             `json:"expires_in"`
		CaptureMethod     string            `json:"capture_method"`
		Metadata          map[string]string `json:"metadata"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	p := checkout.CreateParams{ID: idempotentID(r, "cs"), RequestHash: requestHash(r), AppID: principal(r).AppID, Amount: in.Amount,
		Currency: in.Currency, Option: in.Option, ClientReferenceID: in.ClientReferenceID, ExpiresIn: in.ExpiresIn,
		CaptureMethod: in.CaptureMethod, Metadata: in.Metadata}
	for _, it := range in.LineItems {
		p.LineItems = append(p.LineItems, checkout.LineItemParams{Name: it.Name, UnitAmount: it.UnitAmount, Quantity: it.Quantity})
	}
	sess, err := s.Checkout.CreateSession(r.Context(), p)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, sess.WithSecret(), nil
}

// sessionReadRoutes serve the app's backend (its own sessions, with their
// client secret) and the host (any session, as its payment sheet shows it).
func (s *Server) sessionReadRoutes(r chi.Router) {
	r.Get("/checkout/sessions/{id}", s.h(s.getSession))
}

func (s *Server) getSession(r *http.Request) (int, any, error) {
	if principal(r).Kind == apps.KindHost {
		return s.hostSession(r)
	}
	sess, err := s.Checkout.GetSession(r.Context(), principal(r).AppID, chi.URLParam(r, "id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, sess.WithSecret(), nil
}

// hostSession is what the host's payment sheet reads: the session without
// its client secret and the app's customer id, with the app's name.
func (s *Server) hostSession(r *http.Request) (int, any, error) {
	sess, err := s.Checkout.GetSession(r.Context(), "", chi.URLParam(r, "id"))
	if err != nil {
		return 0, nil, err
	}
	app, err := s.Apps.GetApp(r.Context(), sess.AppID)
	if err != nil {
		return 0, nil, fmt.Errorf("app of session %s: %w", sess.ID, err)
	}
	return http.StatusOK, sess.ForHost(app.Name), nil
}

func (s *Server) listSessions(r *http.Request) (int, any, error) {
	limit, after, err := pageParams(r)
	if err != nil {
		return 0, nil, err
	}
	sessions, more, err := s.Checkout.ListSessions(r.Context(), principal(r).AppID, r.URL.Query().Get("status"), limit, after)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, listOf(sessions, more, checkout.Session.WithSecret), nil
}

// sessionAction runs one of the POST actions on a session of the caller's app.
func (s *Server) sessionAction(fn func(r *http.Request, appID, id string) (checkout.Session, error)) handler {
	return func(r *http.Request) (int, any, error) {
		if err := decode(r, &struct{}{}); err != nil {
			return 0, nil, err
		}
		sess, err := fn(r, principal(r).AppID, chi.URLParam(r, "id"))
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, sess.WithSecret(), nil
	}
}

func (s *Server) cancelSession(r *http.Request) (int, any, error) {
	return s.sessionAction(func(r *http.Request, app, id string) (checkout.Session, error) {
		return s.Checkout.CancelSession(r.Context(), app, id)
	})(r)
}

func (s *Server) captureSession(r *http.Request) (int, any, error) {
	return s.sessionAction(func(r *http.Request, app, id string) (checkout.Session, error) {
		return s.Checkout.Capture(r.Context(), app, id)
	})(r)
}

func (s *Server) voidSession(r *http.Request) (int, any, error) {
	return s.sessionAction(func(r *http.Request, app, id string) (checkout.Session, error) {
		return s.Checkout.Void(r.Context(), app, id)
	})(r)
}

func (s *Server) createRefund(r *http.Request) (int, any, error) {
	var in struct {
		CheckoutSession string            `json:"checkout_session"`
		Invoice         string            `json:"invoice"`
		Amount          string            `json:"amount"`
		Reason          string            `json:"reason"`
		Metadata        map[string]string `json:"metadata"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	paymentID, err := paymentParam(in.CheckoutSession, in.Invoice)
	if err != nil {
		return 0, nil, err
	}
	app := principal(r).AppID
	ref, err := s.Payments.Refund(r.Context(), payments.RefundParams{ID: idempotentID(r, "re"), RequestHash: requestHash(r), AppID: app,
		PaymentID: paymentID, Amount: in.Amount, Reason: in.Reason, Metadata: in.Metadata})
	if errors.Is(err, payments.ErrNotFound) {
		err = s.whyUnpaid(r.Context(), app, paymentID)
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, ref.Public(), nil
}

// paymentParam is the payment a request names: a checkout session or an
// invoice, exactly one.
func paymentParam(session, invoice string) (string, error) {
	switch {
	case session != "" && invoice != "":
		return "", minipay.Field("invoice", fmt.Errorf("%w: give checkout_session or invoice, not both", payments.ErrInvalid))
	case invoice != "":
		return invoice, nil
	case session != "":
		return session, nil
	}
	return "", minipay.Field("checkout_session", fmt.Errorf("%w: checkout_session or invoice", payments.ErrMissing))
}

// whyUnpaid asks the owner of an object that has no payment why: it does
// not exist (for this app), or it was never captured.
func (s *Server) whyUnpaid(ctx context.Context, appID, paymentID string) error {
	if payments.KindOf(paymentID) == payments.KindCheckoutSession {
		return minipay.Field("checkout_session", s.Checkout.WhyUnpaid(ctx, appID, paymentID))
	}
	if payments.KindOf(paymentID) == payments.KindInvoice {
		return minipay.Field("invoice", s.Subscriptions.WhyUnpaid(ctx, appID, paymentID))
	}
	return minipay.Field(payments.ParamOf(paymentID), fmt.Errorf("%w: %s", payments.ErrNotFound, paymentID))
}

func (s *Server) getRefund(r *http.Request) (int, any, error) {
	ref, err := s.Payments.GetRefund(r.Context(), principal(r).AppID, chi.URLParam(r, "id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, ref.Public(), nil
}

type moneyJSON struct {
	Currency string `json:"currency"`
	Amount   string `json:"amount"`
}

func moneyOut(ms []settlement.Money) []moneyJSON {
	out := []moneyJSON{}
	for _, m := range ms {
		out = append(out, moneyJSON{Currency: m.Currency, Amount: ledger.FormatAmount(m.Currency, m.Amount)})
	}
	return out
}

func (s *Server) getBalance(r *http.Request) (int, any, error) {
	b, err := s.Settlement.Balance(r.Context(), principal(r).DeveloperID)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"object": "balance", "pending": moneyOut(b.Pending), "available": moneyOut(b.Available)}, nil
}

type balanceTxnJSON struct {
	ID              string  `json:"id"`
	Object          string  `json:"object"`
	Type            string  `json:"type"`
	App             *string `json:"app"`
	Currency        string  `json:"currency"`
	Amount          string  `json:"amount"`
	Fee             string  `json:"fee"`
	Net             string  `json:"net"`
	Source          string  `json:"source"`
	CheckoutSession *string `json:"checkout_session"`
	Invoice         *string `json:"invoice"`
	AvailableOn     string  `json:"available_on"`
	Payout          *string `json:"payout"`
	Created         string  `json:"created"`
}

func (s *Server) listBalanceTransactions(r *http.Request) (int, any, error) {
	limit, after, err := pageParams(r)
	if err != nil {
		return 0, nil, err
	}
	txns, more, err := s.Settlement.ListBalanceTransactions(r.Context(), principal(r).DeveloperID, limit, after)
	if err != nil {
		return 0, nil, err
	}
	out := make([]balanceTxnJSON, len(txns))
	for i, t := range txns {
		f := func(v int64) string { return ledger.FormatAmount(t.Currency, v) }
		out[i] = balanceTxnJSON{ID: t.ID, Object: "balance_transaction", Type: t.Type, App: null.String(t.AppID),
			Currency: t.Currency, Amount: f(t.Amount), Fee: f(t.Fee), Net: f(t.Net), Source: t.SourceID,
			AvailableOn: minipay.Timestamp(t.AvailableOn), Payout: null.String(t.PayoutID), Created: minipay.Timestamp(t.Created)}
		switch payments.KindOf(t.PaymentID) {
		case payments.KindCheckoutSession:
			out[i].CheckoutSession = &t.PaymentID
		case payments.KindInvoice:
			out[i].Invoice = &t.PaymentID
		}
	}
	return http.StatusOK, newList(out, more), nil
}
