package console

import (
	"net/http"

	"github.com/minipay/minipay/settlement"
)

type moneyRow struct{ Currency, Pending, Available string }

type maturingRow struct {
	Day, Amount string
	Count       int64
}

type payoutRow struct {
	ID, Developer, Run, Amount, Status, Created, Paid string
	InTransit                                         bool
}

func (s *Server) payoutRowOf(p settlement.Payout) payoutRow {
	return payoutRow{ID: p.ID, Developer: p.DeveloperID, Run: p.RunID, Amount: money(p.Currency, p.Amount), Status: p.Status,
		Created: s.when(p.Created), Paid: s.when(p.PaidAt), InTransit: p.Status == settlement.PayoutInTransit}
}

type balancePage struct {
	Balances      []moneyRow
	Maturing      []maturingRow
	MaturingPager pager
	Payouts       []payoutRow
	PayoutPager   pager
}

// balance shows the developer's money: pending (with the day each part
// matures), available for the next settlement run, and payouts. Payouts
// are per developer, so they may include money of the developer's other
// apps, as the API's are.
func (s *Server) balance(w http.ResponseWriter, r *http.Request) error {
	dev := who(r).DeveloperID
	b, err := s.Settlement.Balance(r.Context(), dev)
	if err != nil {
		return err
	}
	pg := &balancePage{}
	avail := map[string]int64{}
	for _, m := range b.Available {
		avail[m.Currency] = m.Amount
	}
	for _, m := range b.Pending {
		pg.Balances = append(pg.Balances, moneyRow{Currency: m.Currency, Pending: money(m.Currency, m.Amount),
			Available: money(m.Currency, avail[m.Currency])})
	}
	limit, after := paging(r, "maturing_after")
	days, more, err := s.Settlement.PendingByDay(r.Context(), dev, s.Location, limit, after)
	if err != nil {
		return err
	}
	for _, d := range days {
		pg.Maturing = append(pg.Maturing, maturingRow{Day: d.Day.Format("2006-01-02"), Amount: money(d.Currency, d.Net), Count: d.Count})
	}
	if len(days) > 0 {
		pg.MaturingPager = newPager(r, "maturing_after", more, days[len(days)-1].Key())
	}
	plimit, pafter := paging(r, "payouts_after")
	payouts, pmore, err := s.Settlement.ListPayouts(r.Context(), settlement.PayoutFilter{DeveloperID: dev, Limit: plimit, StartingAfter: pafter})
	if err != nil {
		return err
	}
	for _, p := range payouts {
		pg.Payouts = append(pg.Payouts, s.payoutRowOf(p))
	}
	if len(payouts) > 0 {
		pg.PayoutPager = newPager(r, "payouts_after", pmore, payouts[len(payouts)-1].ID)
	}
	s.render(w, r, http.StatusOK, "balance", "Balance", pg)
	return nil
}
