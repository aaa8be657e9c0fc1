package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/minipay/minipay/demo"
	"github.com/minipay/minipay/webhooks"
)

// devLog is dev's terminal log: warnings and errors as they are, one short
// line per webhook delivery attempt, and (with -v) everything else.
type devLog struct {
	out     io.Writer
	verbose bool
	next    slog.Handler
}

func (d *devLog) Enabled(context.Context, slog.Level) bool { return true }

func (d *devLog) Handle(ctx context.Context, r slog.Record) error {
	if d.verbose || r.Level >= slog.LevelWarn {
		return d.next.Handle(ctx, r)
	}
	if r.Message != "webhook attempt" {
		return nil
	}
	a := map[string]string{}
	r.Attrs(func(at slog.Attr) bool { a[at.Key] = at.Value.String(); return true })
	result := a["status"]
	if a["outcome"] != "succeeded" {
		result = "failed: " + a["err"] + "; retried later"
	}
	d.line(r.Time, fmt.Sprintf("webhook   %-28s %s -> %s %s (%s ms)", a["type"], a["event"], a["url"], result, a["ms"]))
	return nil
}

func (d *devLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &devLog{out: d.out, verbose: d.verbose, next: d.next.WithAttrs(attrs)}
}

func (d *devLog) WithGroup(name string) slog.Handler {
	return &devLog{out: d.out, verbose: d.verbose, next: d.next.WithGroup(name)}
}

// line prints one line, whole, whichever goroutine calls.
func (d *devLog) line(t time.Time, text string) {
	devLogMu.Lock()
	defer devLogMu.Unlock()
	fmt.Fprintf(d.out, "%s  %s\n", t.Format("15:04:05"), text)
}

var devLogMu sync.Mutex

// logPayments prints one line per purchase, refund, payout, settlement
// run and subscription event of the demo app as it happens, following the
// app's event feed.
func (d *devServer) logPayments(ctx context.Context, app *application, id demo.Identity, since time.Time) {
	out := &devLog{out: d.stderr}
	owner := webhooks.Owner{AppID: id.AppID, DeveloperID: id.DeveloperID}
	after := ""
	for ctx.Err() == nil {
		page, _, err := app.webhooks.ListEvents(ctx, owner, webhooks.EventFilter{OldestFirst: true, Limit: 100, StartingAfter: after, CreatedGTE: since})
		if err != nil && ctx.Err() == nil {
			app.log.Warn("follow the demo app's events", "err", err)
		}
		for _, raw := range page {
			var ev struct {
				ID, Type string
				Data     struct{ Object map[string]any }
			}
			if json.Unmarshal(raw, &ev) != nil {
				continue
			}
			after = ev.ID
			if text := paymentLine(ev.Type, ev.Data.Object); text != "" {
				out.line(time.Now(), text)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// paymentLine describes a money event in a few words, or "" for others.
func paymentLine(typ string, o map[string]any) string {
	s := func(k string) string { v, _ := o[k].(string); return v }
	switch typ {
	case webhooks.CheckoutSessionCompleted:
		return fmt.Sprintf("purchase  %s %s %s (%s), fee %s", s("id"), s("amount_total"), s("currency"), s("option"), s("fee"))
	case webhooks.RefundSucceeded:
		return fmt.Sprintf("refund    %s %s %s of %s", s("id"), s("amount"), s("currency"), s("checkout_session"))
	case webhooks.PayoutCreated:
		return fmt.Sprintf("payout    %s %s %s in transit (settlement run %s)", s("id"), s("amount"), s("currency"), s("settlement_run"))
	case webhooks.PayoutPaid:
		return fmt.Sprintf("payout    %s %s %s paid", s("id"), s("amount"), s("currency"))
	case webhooks.SubscriptionActivated:
		plan, _ := o["plan"].(map[string]any)
		name, _ := plan["name"].(string)
		return fmt.Sprintf("subscribe %s signed (%s), plan %q", s("id"), s("status"), name)
	case webhooks.InvoicePaid:
		return fmt.Sprintf("invoice   %s %s %s paid for %s, fee %s", s("id"), s("amount"), s("currency"), s("subscription"), s("fee"))
	case webhooks.InvoicePaymentFailed:
		return fmt.Sprintf("invoice   %s %s %s of %s not paid (attempt %v)", s("id"), s("amount"), s("currency"), s("subscription"), o["attempt_count"])
	case webhooks.SubscriptionCanceled:
		return fmt.Sprintf("subscribe %s canceled (%s)", s("id"), s("cancellation_reason"))
	}
	return ""
}
