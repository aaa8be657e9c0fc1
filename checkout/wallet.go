package checkout

import (
	"context"
	"fmt"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/apps"
	"github.com/minipay/minipay/chart"
	"github.com/minipay/minipay/ledger"
)

// WalletBalance is a wallet's money in one currency, in minor units:
// Available can be spent, Held is reserved by uncaptured holds.
type WalletBalance struct {
	Currency  string
	Available int64
	Held      int64
}

// Wallet is a host user's money on the platform.
type Wallet struct {
	UserID   string
	Balances []WalletBalance
}

// TopUp funds userID's wallet from the platform's funding account: the host
// received the money (by card, bank, …) and credits it here. transferID
// makes the top-up idempotent.
func (s *Service) TopUp(ctx context.Context, userID, amount, currency, transferID string) (Wallet, error) {
	if !apps.ValidUserID(userID) {
		return Wallet{}, minipay.Field("user_id", apps.ErrUserIDInvalid)
	}
	if currency == "" {
		return Wallet{}, minipay.Field("currency", fmt.Errorf("%w: currency", ErrMissing))
	}
	if _, err := ledger.Exponent(currency); err != nil {
		return Wallet{}, minipay.Field("currency", err)
	}
	if amount == "" {
		return Wallet{}, minipay.Field("amount", fmt.Errorf("%w: amount", ErrMissing))
	}
	minor, err := ledger.ParseAmount(currency, amount)
	if err != nil {
		return Wallet{}, minipay.Field("amount", err)
	}
	if minor <= 0 {
		return Wallet{}, minipay.Field("amount", ErrTopUpNotPositive)
	}
	if err := s.ensure(ctx, chart.WalletAccount(userID, currency), chart.FundingAccount(currency)); err != nil {
		return Wallet{}, err
	}
	_, err = s.ledger.Post(ctx, ledger.Transfer{ID: transferID, Code: "topup",
		Postings: []ledger.Posting{{Account: chart.Funding(currency), Debit: minor}, {Account: chart.Wallet(userID, currency), Credit: minor}},
		Metadata: map[string]string{"minipay_user": userID}})
	if err != nil {
		return Wallet{}, fmt.Errorf("top up %s: %w", userID, err)
	}
	return s.GetWallet(ctx, userID)
}

// GetWallet returns userID's balances in every currency it has a wallet in.
func (s *Service) GetWallet(ctx context.Context, userID string) (Wallet, error) {
	if !apps.ValidUserID(userID) {
		return Wallet{}, minipay.Field("user_id", apps.ErrUserIDInvalid)
	}
	codes := make([]string, 0, len(ledger.Currencies()))
	for _, cur := range ledger.Currencies() {
		codes = append(codes, chart.Wallet(userID, cur))
	}
	accts, err := s.ledger.GetAccounts(ctx, codes)
	if err != nil {
		return Wallet{}, err
	}
	if len(accts) == 0 {
		return Wallet{}, fmt.Errorf("%w: %s", ErrWalletNotFound, userID)
	}
	w := Wallet{UserID: userID}
	for _, a := range accts {
		w.Balances = append(w.Balances, WalletBalance{Currency: a.Currency, Available: a.Available(), Held: a.DebitsPending})
	}
	return w, nil
}
