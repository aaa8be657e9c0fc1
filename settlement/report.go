package settlement

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/ledger"
)

// The CSV reports of a run, documented in docs/settlement-report.md. Rows
// stream from a database cursor straight to the writer: memory stays flat
// however many rows there are. Only control totals (one per currency) are
// kept while streaming.

var summaryHeader = []string{"record", "run", "cutoff", "developer", "app", "currency", "gross", "refunds", "fees", "net",
	"payment_count", "refund_count", "payout_count", "payout", "status", "disputes"}

var detailHeader = []string{"record", "run", "payout", "developer", "app", "currency", "type", "balance_transaction",
	"source", "checkout_session", "client_reference_id", "amount", "fee", "net", "count", "available_on", "created", "metadata",
	"invoice"}

// controlTotals sums report rows in one currency.
type controlTotals struct {
	gross, refunds, disputes, fees, net   int64
	amount, fee                           int64
	paymentCount, refundCount, payouts, n int64
}

// WriteReport writes run runID's report as CSV to w: one row per payout and
// a control-totals row per currency; with detail, one row per balance
// transaction behind each payout instead, with the payment's
// client_reference_id and metadata. A run still running has no final
// report: ErrRunNotFinished.
func (s *Service) WriteReport(ctx context.Context, runID string, detail bool, w io.Writer) error {
	run, err := s.runHeader(ctx, runID)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	cw := csv.NewWriter(bw)
	if detail {
		err = s.writeDetail(ctx, run, cw)
	} else {
		err = s.writeSummary(ctx, run, cw)
	}
	if err != nil {
		return fmt.Errorf("report of run %s: %w", runID, err)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("report of run %s: %w", runID, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("report of run %s: %w", runID, err)
	}
	return nil
}

// CheckReport reports whether run runID has a final report, without
// writing it: ErrRunNotFound or ErrRunNotFinished otherwise. Callers that
// must choose a response status before streaming use it.
func (s *Service) CheckReport(ctx context.Context, runID string) error {
	_, err := s.runHeader(ctx, runID)
	return err
}

func (s *Service) runHeader(ctx context.Context, runID string) (Run, error) {
	var r Run
	err := s.db.QueryRow(ctx, `SELECT id, cutoff, status FROM settlement_runs WHERE id = $1`, runID).Scan(&r.ID, &r.Cutoff, &r.Status)
	if err != nil {
		return Run{}, fmt.Errorf("%w: %s", ErrRunNotFound, runID)
	}
	if r.Status == RunRunning {
		return Run{}, fmt.Errorf("%w: %s", ErrRunNotFinished, runID)
	}
	return r, nil
}

func (s *Service) writeSummary(ctx context.Context, run Run, cw *csv.Writer) error {
	if err := cw.Write(summaryHeader); err != nil {
		return err
	}
	rows, err := s.db.Query(ctx, `
		SELECT i.developer_id, i.apps, i.currency, i.gross, i.refunds, i.disputes, i.fees, i.net, i.payment_count,
			i.refund_count, i.payout_id, coalesce(p.status, 'planned')
		FROM settlement_items i LEFT JOIN payouts p ON p.id = i.payout_id
		WHERE i.run_id = $1 AND i.payout_id IS NOT NULL
		ORDER BY i.currency, i.developer_id`, run.ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	totals := map[string]*controlTotals{}
	cutoff := minipay.Timestamp(run.Cutoff)
	var (
		dev, apps, cur, payout, status string
		gross, refunds, disputes       int64
		fees, net                      int64
		paymentCount, refundCount      int64
	)
	rec := make([]string, len(summaryHeader))
	for rows.Next() {
		if err := rows.Scan(&dev, &apps, &cur, &gross, &refunds, &disputes, &fees, &net, &paymentCount, &refundCount, &payout, &status); err != nil {
			return err
		}
		f := func(v int64) string { return ledger.FormatAmount(cur, v) }
		rec = append(rec[:0], "payout", run.ID, cutoff, dev, apps, cur, f(gross), f(refunds), f(fees), f(net),
			itoa(paymentCount), itoa(refundCount), "1", payout, status, f(disputes))
		if err := cw.Write(rec); err != nil {
			return err
		}
		t := totalsFor(totals, cur)
		t.gross, t.refunds, t.disputes, t.fees, t.net = t.gross+gross, t.refunds+refunds, t.disputes+disputes, t.fees+fees, t.net+net
		t.paymentCount, t.refundCount, t.payouts = t.paymentCount+paymentCount, t.refundCount+refundCount, t.payouts+1
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, cur := range sortedKeys(totals) {
		t := totals[cur]
		f := func(v int64) string { return ledger.FormatAmount(cur, v) }
		if err := cw.Write([]string{"total", run.ID, cutoff, "", "", cur, f(t.gross), f(t.refunds), f(t.fees), f(t.net),
			itoa(t.paymentCount), itoa(t.refundCount), itoa(t.payouts), "", "", f(t.disputes)}); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) writeDetail(ctx context.Context, run Run, cw *csv.Writer) error {
	if err := cw.Write(detailHeader); err != nil {
		return err
	}
	// payments is package payments' table, read here (read-only) so the
	// detail streams in one pass instead of a lookup per row.
	rows, err := s.db.Query(ctx, `
		SELECT i.payout_id, i.developer_id, coalesce(bt.app_id, ''), i.currency, bt.type, bt.id, bt.source_id,
			coalesce(bt.payment_id, ''), coalesce(p.client_reference_id, ''), bt.amount, bt.fee, bt.net,
			bt.available_on, bt.created_at, coalesce(p.metadata, '{}')::text
		FROM settlement_items i
		JOIN balance_transactions bt ON bt.payout_id = i.payout_id AND bt.type <> 'payout'
		LEFT JOIN payments p ON p.id = bt.payment_id
		WHERE i.run_id = $1 AND i.payout_id IS NOT NULL
		ORDER BY i.currency, i.developer_id, bt.id`, run.ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	totals := map[string]*controlTotals{}
	var (
		payout, dev, app, cur, typ, txnID, source, payment, ref, md string
		amount, fee, net                                            int64
		availableOn, created                                        time.Time
	)
	rec := make([]string, len(detailHeader))
	for rows.Next() {
		if err := rows.Scan(&payout, &dev, &app, &cur, &typ, &txnID, &source, &payment, &ref, &amount, &fee, &net,
			&availableOn, &created, &md); err != nil {
			return err
		}
		f := func(v int64) string { return ledger.FormatAmount(cur, v) }
		session, invoice := payment, ""
		if strings.HasPrefix(payment, "in_") {
			session, invoice = "", payment
		}
		rec = append(rec[:0], "balance_transaction", run.ID, payout, dev, app, cur, typ, txnID, source, session,
			safeCell(ref), f(amount), f(fee), f(net), "1", minipay.Timestamp(availableOn), minipay.Timestamp(created), md, invoice)
		if err := cw.Write(rec); err != nil {
			return err
		}
		t := totalsFor(totals, cur)
		t.amount, t.fee, t.net, t.n = t.amount+amount, t.fee+fee, t.net+net, t.n+1
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, cur := range sortedKeys(totals) {
		t := totals[cur]
		f := func(v int64) string { return ledger.FormatAmount(cur, v) }
		if err := cw.Write([]string{"total", run.ID, "", "", "", cur, "", "", "", "", "", f(t.amount), f(t.fee),
			f(t.net), itoa(t.n), "", "", "", ""}); err != nil {
			return err
		}
	}
	return nil
}

func totalsFor(m map[string]*controlTotals, cur string) *controlTotals {
	t := m[cur]
	if t == nil {
		t = &controlTotals{}
		m[cur] = t
	}
	return t
}

func sortedKeys(m map[string]*controlTotals) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// safeCell keeps a developer-chosen text from being read as a formula by a
// spreadsheet: a leading =, +, -, @, tab or carriage return gets a quote.
func safeCell(s string) string {
	if s != "" && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@' || s[0] == '\t' || s[0] == '\r') {
		return "'" + s
	}
	return s
}
