package minipay

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

// HostClient calls the minipay API as the host: the super-app's wallet
// service, with the host key (host_…), which must never reach a browser or
// a mini-app. It funds and reads users' wallets, reads a session for the
// payment sheet, and confirms it for the signed-in user. It is safe for
// concurrent use, and retries as Client does.
type HostClient struct{ c *Client }

// NewHost returns a host client that authenticates with hostKey; the
// options are Client's.
func NewHost(hostKey string, opts ...Option) *HostClient {
	return &HostClient{c: New(hostKey, opts...)}
}

// Wallet is a user's money in each currency: available to spend, and held
// by manual-capture payments not yet captured or voided.
type Wallet struct {
	UserID   string          `json:"user_id"`
	Balances []WalletBalance `json:"balances"`
}

// WalletBalance is a wallet's money in one currency.
type WalletBalance struct {
	Currency  string `json:"currency"`
	Available string `json:"available"`
	Held      string `json:"held"`
}

// TopUpParams credits money the host received (by card, bank, …) to a
// wallet. Set IdempotencyKey to the host's own payment reference, so a
// retried top-up lands once.
type TopUpParams struct {
	Amount         string `json:"amount"`
	Currency       string `json:"currency"`
	IdempotencyKey string `json:"-"`
}

// TopUp funds a user's wallet and returns it.
func (h *HostClient) TopUp(ctx context.Context, userID string, p TopUpParams) (*Wallet, error) {
	var w Wallet
	return &w, h.c.call(ctx, http.MethodPost, "/v1/wallets/"+url.PathEscape(userID)+"/topups", nil, p, p.IdempotencyKey, &w)
}

// GetWallet reads a user's wallet.
func (h *HostClient) GetWallet(ctx context.Context, userID string) (*Wallet, error) {
	var w Wallet
	return &w, h.c.call(ctx, http.MethodGet, "/v1/wallets/"+url.PathEscape(userID), nil, nil, "", &w)
}

// SheetSession is a checkout session as the host's payment sheet shows it:
// no client secret, no customer, and the name of the app selling.
type SheetSession struct {
	Session
	AppName string `json:"app_name"`
}

// GetSession reads what the payment sheet shows of a session.
func (h *HostClient) GetSession(ctx context.Context, id string) (*SheetSession, error) {
	var s SheetSession
	return &s, h.c.call(ctx, http.MethodGet, "/v1/checkout/sessions/"+url.PathEscape(id), nil, nil, "", &s)
}

// ConfirmParams pays a session from the signed-in user's wallet with the
// client secret the mini-app handed over. Set IdempotencyKey to the
// bridge request's id, so a retried confirm pays once.
type ConfirmParams struct {
	UserID         string `json:"user_id"`
	ClientSecret   string `json:"client_secret"`
	IdempotencyKey string `json:"-"`
}

// Confirm pays a session. A wallet that cannot pay is an *Error with code
// "insufficient_funds" (402); the session stays open.
func (h *HostClient) Confirm(ctx context.Context, id string, p ConfirmParams) (*Session, error) {
	if strings.TrimSpace(p.UserID) == "" {
		return nil, errMissing("UserID")
	}
	var s Session
	return &s, h.c.call(ctx, http.MethodPost, "/v1/checkout/sessions/"+url.PathEscape(id)+"/confirm", nil, p, p.IdempotencyKey, &s)
}
