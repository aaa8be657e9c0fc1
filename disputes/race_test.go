package disputes_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/minipay/minipay/chart"
	"github.com/minipay/minipay/disputes"
	"github.com/minipay/minipay/internal/leader"
	"github.com/minipay/minipay/payments"
)

// TestRefundAndDisputeRace races, on each of many payments, a refund on
// one replica against a dispute on another, each for 6.00 of 10.00: the
// two cannot both fit, and they are computed from the same totals. Exactly
// one of each pair succeeds, the other is refused, and the books balance:
// every developer's pending balance equals its balance transactions, the
// disputes account holds exactly what open disputes hold.
func TestRefundAndDisputeRace(t *testing.T) {
	w := newWorld(t)
	payA, dispA := w.payments, w.disputes
	payB, dispB := w.replica()
	const n = 16
	pays := make([]payments.Payment, n)
	for i := range pays {
		pays[i] = w.pay(w.appID, "10.00", "goods")
	}
	type result struct{ refund, dispute error }
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, p := range pays {
		// Alternate which replica refunds and which disputes.
		pay, disp := payA, dispB
		if i%2 == 1 {
			pay, disp = payB, dispA
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			_, results[i].refund = pay.Refund(w.ctx, payments.RefundParams{AppID: w.appID, PaymentID: p.ID, Amount: "6.00"})
		}()
		go func() {
			defer wg.Done()
			<-start
			_, results[i].dispute = disp.Open(w.ctx, disputes.OpenParams{PaymentID: p.ID, UserID: p.UserID, Amount: "6.00", Reason: "not_received"})
		}()
	}
	close(start)
	wg.Wait()
	var refunds, opened, held int64
	for i, r := range results {
		refusedRefund := errors.Is(r.refund, payments.ErrRefundTooLarge) || errors.Is(r.refund, payments.ErrRefundContention)
		refusedDispute := errors.Is(r.dispute, disputes.ErrExceedsRemaining) || errors.Is(r.dispute, disputes.ErrContention)
		switch {
		case r.refund == nil && refusedDispute:
			refunds++
		case r.dispute == nil && refusedRefund:
			opened++
			held += 600
		default:
			t.Fatalf("payment %d: refund %v, dispute %v: want exactly one to succeed and the other refused", i, r.refund, r.dispute)
		}
		p := w.payment(pays[i].ID)
		if p.AmountRefunded+p.AmountDisputed != 600 {
			t.Fatalf("payment %d: refunded %d + disputed %d, want 6.00 in all", i, p.AmountRefunded, p.AmountDisputed)
		}
	}
	t.Logf("%d refunds won the race, %d disputes", refunds, opened)
	if got := w.balance(chart.Disputes("CNY")); got != held {
		t.Fatalf("disputes account %d, want %d", got, held)
	}
	w.balanced()
}

// TestOneOpenDisputeUnderConcurrency opens disputes of one payment from
// two replicas at once: one opens, the others are told it is open.
func TestOneOpenDisputeUnderConcurrency(t *testing.T) {
	w := newWorld(t)
	_, other := w.replica()
	p := w.pay(w.appID, "10.00", "goods")
	replicas := []*disputes.Service{w.disputes, other}
	var (
		wg           sync.WaitGroup
		mu           sync.Mutex
		ok, refused  int
		start        = make(chan struct{})
		unexpected   []error
		attemptCount = 12
	)
	for i := 0; i < attemptCount; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := replicas[i%2].Open(w.ctx, disputes.OpenParams{PaymentID: p.ID, UserID: p.UserID, Amount: "1.00", Reason: "duplicate"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, disputes.ErrAlreadyOpen), errors.Is(err, disputes.ErrContention):
				refused++
			default:
				unexpected = append(unexpected, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if ok != 1 || refused != attemptCount-1 || len(unexpected) > 0 {
		t.Fatalf("%d opened, %d refused, unexpected %v", ok, refused, unexpected)
	}
	if got := w.payment(p.ID).AmountDisputed; got != 100 {
		t.Fatalf("payment holds %d, want 1.00", got)
	}
	w.balanced()
}

// TestRulingRacesTheDeadline: on disputes past their deadline, the
// platform's ruling (won) on one replica races the deadline job (lost) on
// another and the developer's late acceptance. Each dispute is closed
// exactly once, with one transfer and one dispute.closed event, and the
// money went where its one outcome says.
func TestRulingRacesTheDeadline(t *testing.T) {
	w := newWorld(t)
	_, other := w.replica()
	const n = 10
	var ds []disputes.Dispute
	for i := 0; i < n; i++ {
		d := w.open(w.pay(w.appID, "10.00", "goods"), "")
		w.overdue(d.ID)
		ds = append(ds, d)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2 + n)
	go func() {
		defer wg.Done()
		<-start
		for i, d := range ds {
			if i%2 == 0 { // half from the front, half after the job began
				if _, err := w.disputes.Close(w.ctx, d.ID, disputes.StatusWon); err != nil && !errors.Is(err, disputes.ErrClosed) {
					t.Errorf("ruling: %v", err)
				}
			}
		}
	}()
	go func() {
		defer wg.Done()
		<-start
		if _, err := other.LoseOverdue(w.ctx, 100); err != nil {
			t.Errorf("deadline job: %v", err)
		}
	}()
	for _, d := range ds {
		go func() {
			defer wg.Done()
			<-start
			_, err := w.disputes.Respond(w.ctx, disputes.RespondParams{AppID: w.appID, DisputeID: d.ID, Accept: true})
			if !errors.Is(err, disputes.ErrDeadlinePassed) && !errors.Is(err, disputes.ErrClosed) {
				t.Errorf("late acceptance: %v", err)
			}
		}()
	}
	close(start)
	wg.Wait()
	// What the job did not reach (it raced the rulings), it finishes now.
	if _, err := other.LoseOverdue(w.ctx, 100); err != nil {
		t.Fatal(err)
	}
	var won, lost int
	for _, d := range ds {
		got, err := w.disputes.Get(w.ctx, "", d.ID)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case got.Status == disputes.StatusWon && got.ClosedBy == disputes.ClosedByRuling:
			won++
		case got.Status == disputes.StatusLost && got.ClosedBy == disputes.ClosedByDeadline:
			lost++
		default:
			t.Fatalf("dispute %+v", got)
		}
		if n := w.count(`SELECT count(*) FROM ledger_transfers WHERE id = $1`, chart.DisputeClose(d.ID)); n != 1 {
			t.Fatalf("%s: %d closing transfers", d.ID, n)
		}
		if n := w.count(`SELECT count(*) FROM events WHERE object_id = $1 AND type = 'dispute.closed'`, d.ID); n != 1 {
			t.Fatalf("%s: %d dispute.closed events", d.ID, n)
		}
		wallet := w.balance(chart.Wallet(w.payment(d.PaymentID).UserID, "CNY"))
		if want := map[string]int64{disputes.StatusWon: 0, disputes.StatusLost: 1000}[got.Status]; wallet != want {
			t.Fatalf("%s %s: payer's wallet %d, want %d", d.ID, got.Status, wallet, want)
		}
	}
	t.Logf("%d won by ruling, %d lost to the deadline", won, lost)
	if got := w.balance(chart.Disputes("CNY")); got != 0 {
		t.Fatalf("disputes account %d after every ruling", got)
	}
	w.balanced()
}

// TestDeadlineJobOnTwoReplicas runs the deadline job on two replicas, as
// two serve processes would: it waits while another process leads, and
// every overdue dispute is lost exactly once.
func TestDeadlineJobOnTwoReplicas(t *testing.T) {
	w := newWorld(t)
	_, other := w.replica()
	const n = 12
	var ds []disputes.Dispute
	for i := 0; i < n; i++ {
		d := w.open(w.pay(w.appID, "3.00", "virtual_goods"), "")
		w.overdue(d.ID)
		ds = append(ds, d)
	}
	pending := w.open(w.pay(w.appID, "3.00", "goods"), "") // not due for a week

	// While another process leads the job, neither replica closes anything.
	held, release := make(chan struct{}), make(chan struct{})
	go func() {
		_, _ = leader.Run(w.ctx, w.db.Pool, disputes.DeadlineJob, true, func(context.Context) error {
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	ctx, cancel := context.WithCancel(w.ctx)
	var wg sync.WaitGroup
	for _, r := range []*disputes.Service{w.disputes, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.RunDeadlines(ctx, 10*time.Millisecond)
		}()
	}
	time.Sleep(300 * time.Millisecond)
	if lost := w.count(`SELECT count(*) FROM disputes WHERE status = 'lost'`); lost != 0 {
		t.Fatalf("%d disputes lost while another process led the job", lost)
	}
	close(release)
	waitFor(t, "every overdue dispute lost", func() bool {
		return w.count(`SELECT count(*) FROM disputes WHERE status = 'lost' AND closed_by = 'deadline'`) == n
	})
	time.Sleep(100 * time.Millisecond) // a few more ticks on both replicas
	cancel()
	wg.Wait()
	for _, d := range ds {
		if c := w.count(`SELECT count(*) FROM ledger_transfers WHERE id = $1`, chart.DisputeClose(d.ID)); c != 1 {
			t.Fatalf("%s: %d closing transfers", d.ID, c)
		}
		if c := w.count(`SELECT count(*) FROM events WHERE object_id = $1 AND type = 'dispute.closed'`, d.ID); c != 1 {
			t.Fatalf("%s: %d dispute.closed events", d.ID, c)
		}
		if got := w.balance(chart.Wallet(w.payment(d.PaymentID).UserID, "CNY")); got != 300 {
			t.Fatalf("%s: payer's wallet %d", d.ID, got)
		}
	}
	if p, _ := w.disputes.Get(w.ctx, "", pending.ID); p.Status != disputes.StatusNeedsResponse {
		t.Fatalf("a dispute not yet due was closed: %+v", p)
	}
	w.balanced()
}
