package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/shopspring/decimal"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/internal/null"
	"github.com/minipay/minipay/ledger"
)

func (s *Server) ledgerRoutes(r chi.Router) {
	r.Post("/ledger/accounts", s.h(s.createAccount))
	r.Get("/ledger/accounts/{id}", s.h(s.getAccount))
	r.Get("/ledger/accounts/{id}/entries", s.h(s.listEntries))
	r.Post("/ledger/transfers", s.h(s.createTransfer))
	r.Get("/ledger/transfers/{id}", s.h(s.getTransfer))
	r.Post("/ledger/transfers/{id}/post", s.h(s.postPending))
	r.Post("/ledger/transfers/{id}/void", s.h(s.voidPending))
	r.Post("/ledger/transfers/{id}/reverse", s.h(s.reverseTransfer))
	r.Get("/ledger/trial_balance", s.h(s.trialBalance))
}

type accountJSON struct {
	ID             string `json:"id"`
	Object         string `json:"object"`
	Code           string `json:"code"`
	Currency       string `json:"currency"`
	NormalBalance  string `json:"normal_balance"`
	NoOverdraft    bool   `json:"no_overdraft"`
	Balance        string `json:"balance"`
	Available      string `json:"available"`
	DebitsPosted   string `json:"debits_posted"`
	CreditsPosted  string `json:"credits_posted"`
	DebitsPending  string `json:"debits_pending"`
	CreditsPending string `json:"credits_pending"`
	Created        string `json:"created"`
	AsOf           string `json:"as_of,omitempty"`
}

func accountOut(a ledger.Account) accountJSON {
	f := func(v int64) string { return ledger.FormatAmount(a.Currency, v) }
	return accountJSON{
		ID: a.ID, Object: "ledger_account", Code: a.Code, Currency: a.Currency,
		NormalBalance: string(a.NormalBalance), NoOverdraft: a.NoOverdraft,
		Balance: f(a.Balance()), Available: f(a.Available()),
		DebitsPosted: f(a.DebitsPosted), CreditsPosted: f(a.CreditsPosted),
		DebitsPending: f(a.DebitsPending), CreditsPending: f(a.CreditsPending),
		Created: minipay.Timestamp(a.Created),
	}
}

func (s *Server) createAccount(r *http.Request) (int, any, error) {
	var in struct {
		Code          string `json:"code"`
		Currency      string `json:"currency"`
		NormalBalance string `json:"normal_balance"`
		NoOverdraft   bool   `json:"no_overdraft"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	a, err := s.Ledger.CreateAccount(r.Context(), ledger.AccountSpec{
		Code: in.Code, Currency: in.Currency, NormalBalance: ledger.NormalBalance(in.NormalBalance), NoOverdraft: in.NoOverdraft,
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, accountOut(a), nil
}

// getAccount reads an account now, or as of ?at=<RFC 3339>.
func (s *Server) getAccount(r *http.Request) (int, any, error) {
	ref := chi.URLParam(r, "id")
	at := r.URL.Query().Get("at")
	if at == "" {
		a, err := s.Ledger.GetAccount(r.Context(), ref)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, accountOut(a), nil
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return 0, nil, minipay.Field("at", fmt.Errorf("%w: at must be an RFC 3339 time", errInvalidParam))
	}
	a, err := s.Ledger.AccountAt(r.Context(), ref, t)
	if err != nil {
		return 0, nil, err
	}
	out := accountOut(a)
	out.AsOf = minipay.Timestamp(t)
	return http.StatusOK, out, nil
}

type entryJSON struct {
	Object         string `json:"object"`
	Transfer       string `json:"transfer"`
	Code           string `json:"code"`
	Account        string `json:"account"`
	Currency       string `json:"currency"`
	DebitsPosted   string `json:"debits_posted"`
	CreditsPosted  string `json:"credits_posted"`
	DebitsPending  string `json:"debits_pending"`
	CreditsPending string `json:"credits_pending"`
	Created        string `json:"created"`
}

// listEntries pages through an account's entries, newest first; the cursor
// is the transfer id of the last entry.
func (s *Server) listEntries(r *http.Request) (int, any, error) {
	limit, after, err := pageParams(r)
	if err != nil {
		return 0, nil, err
	}
	entries, more, err := s.Ledger.Entries(r.Context(), chi.URLParam(r, "id"), limit, after)
	if err != nil {
		return 0, nil, err
	}
	out := make([]entryJSON, len(entries))
	for i, e := range entries {
		f := func(v int64) string { return ledger.FormatAmount(e.Currency, v) }
		out[i] = entryJSON{Object: "ledger_entry", Transfer: e.TransferID, Code: e.Code, Account: e.AccountID, Currency: e.Currency,
			DebitsPosted: f(e.DebitsPosted), CreditsPosted: f(e.CreditsPosted),
			DebitsPending: f(e.DebitsPending), CreditsPending: f(e.CreditsPending), Created: minipay.Timestamp(e.Created)}
	}
	return http.StatusOK, newList(out, more), nil
}

type postingJSON struct {
	Account  string  `json:"account"`
	Currency string  `json:"currency,omitempty"`
	Debit    *string `json:"debit,omitempty"`
	Credit   *string `json:"credit,omitempty"`
}

type transferJSON struct {
	ID         string            `json:"id"`
	Object     string            `json:"object"`
	Code       string            `json:"code"`
	Status     string            `json:"status"`
	Pending    bool              `json:"pending"`
	Postings   []postingJSON     `json:"postings"`
	Metadata   map[string]string `json:"metadata"`
	Created    string            `json:"created"`
	ExpiresAt  *string           `json:"expires_at,omitempty"`
	PendingID  string            `json:"pending_transfer,omitempty"`
	ReversesID string            `json:"reverses,omitempty"`
	ResolvedBy string            `json:"resolved_by,omitempty"`
}

func transferOut(t ledger.Transfer) transferJSON {
	out := transferJSON{
		ID: t.ID, Object: "ledger_transfer", Code: t.Code, Status: string(t.Status), Pending: t.Pending,
		Metadata: t.Metadata, Created: minipay.Timestamp(t.Created), ExpiresAt: optionalTimestamp(t.ExpiresAt),
		PendingID: t.PendingID, ReversesID: t.ReversesID, ResolvedBy: t.ResolvedBy,
	}
	if out.Metadata == nil {
		out.Metadata = map[string]string{}
	}
	for _, p := range t.Postings {
		pj := postingJSON{Account: p.Account, Currency: p.Currency}
		if p.Debit != 0 {
			s := ledger.FormatAmount(p.Currency, p.Debit)
			pj.Debit = &s
		} else {
			s := ledger.FormatAmount(p.Currency, p.Credit)
			pj.Credit = &s
		}
		out.Postings = append(out.Postings, pj)
	}
	return out
}

func (s *Server) createTransfer(r *http.Request) (int, any, error) {
	var in struct {
		ID       string            `json:"id"`
		Code     string            `json:"code"`
		Postings []postingJSON     `json:"postings"`
		Pending  bool              `json:"pending"`
		Timeout  int64             `json:"timeout"`
		Metadata map[string]string `json:"metadata"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if in.ID == "" {
		in.ID = objectID(r, "tr")
	}
	// An operator's metadata obeys the callers' rules: minipay's own keys
	// (ledger.SystemKeyPrefix) are written only by minipay.
	if err := ledger.ValidateMetadata(in.Metadata); err != nil {
		return 0, nil, err
	}
	amounts := make([]ledger.PostingAmounts, len(in.Postings))
	for i, p := range in.Postings {
		amounts[i] = ledger.PostingAmounts{Account: p.Account, Debit: null.Value(p.Debit), Credit: null.Value(p.Credit)}
	}
	postings, err := s.Ledger.ParsePostings(r.Context(), amounts)
	if err != nil {
		return 0, nil, err
	}
	if in.Timeout < 0 || in.Timeout > int64(ledger.TimeoutMax/time.Second) {
		return 0, nil, minipay.Field("timeout", fmt.Errorf("%w: timeout must be 0–%d seconds", errInvalidParam, int64(ledger.TimeoutMax/time.Second)))
	}
	t, err := s.Ledger.Post(r.Context(), ledger.Transfer{
		ID: in.ID, Code: in.Code, Postings: postings, Pending: in.Pending,
		Timeout: time.Duration(in.Timeout) * time.Second, Metadata: in.Metadata,
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, transferOut(t), nil
}

func (s *Server) getTransfer(r *http.Request) (int, any, error) {
	t, err := s.Ledger.GetTransfer(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, transferOut(t), nil
}

func (s *Server) postPending(r *http.Request) (int, any, error) {
	if err := decode(r, &struct{}{}); err != nil {
		return 0, nil, err
	}
	t, err := s.Ledger.PostPending(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, transferOut(t), nil
}

func (s *Server) voidPending(r *http.Request) (int, any, error) {
	if err := decode(r, &struct{}{}); err != nil {
		return 0, nil, err
	}
	t, err := s.Ledger.VoidPending(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, transferOut(t), nil
}

func (s *Server) reverseTransfer(r *http.Request) (int, any, error) {
	var in struct {
		Metadata map[string]string `json:"metadata"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	t, err := s.Ledger.Reverse(r.Context(), chi.URLParam(r, "id"), in.Metadata)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, transferOut(t), nil
}

type currencyTotalsJSON struct {
	Currency       string `json:"currency"`
	Debits         string `json:"debits"`
	Credits        string `json:"credits"`
	DebitsPending  string `json:"debits_pending"`
	CreditsPending string `json:"credits_pending"`
}

func (s *Server) trialBalance(r *http.Request) (int, any, error) {
	tb, err := s.Ledger.TrialBalance(r.Context())
	if err != nil {
		return 0, nil, err
	}
	out := struct {
		Object     string               `json:"object"`
		Balanced   bool                 `json:"balanced"`
		Currencies []currencyTotalsJSON `json:"currencies"`
	}{Object: "trial_balance", Balanced: tb.Balanced, Currencies: []currencyTotalsJSON{}}
	for _, c := range tb.Currencies {
		f := func(d decimal.Decimal) string { return ledger.FormatTotal(c.Currency, d) }
		out.Currencies = append(out.Currencies, currencyTotalsJSON{Currency: c.Currency,
			Debits: f(c.Debits), Credits: f(c.Credits), DebitsPending: f(c.DebitsPending), CreditsPending: f(c.CreditsPending)})
	}
	return http.StatusOK, out, nil
}
