package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/shopspring/decimal"
)

// The bank: small groups of no_overdraft ledger accounts between which
// clients move money through any replica, each transfer retried with its
// Idempotency-Key until it is definite, while other clients read balances.
// The history of those operations (when each was first sent, when its
// definite answer came back, what it was) is checked by Porcupine against a
// sequential bank: a history no order of the operations within their time
// windows explains is not linearizable, and fails the test.
const (
	bankGroups   = 4   // independent groups; Porcupine checks each alone
	bankAccounts = 3   // accounts per group
	bankInitial  = 100 // each account's opening balance, in minor units (1.00 CNY)
)

// bankState is one group's balances, in minor units.
type bankState [bankAccounts]int64

// bankInput is an operation on one group: a transfer of amount from one
// account to another, or a read of one account's balance.
type bankInput struct {
	group    int
	read     bool
	from, to int // transfer: accounts in the group; read: from
	amount   int64
}

// bankOutput is an operation's definite result. A transfer is posted or
// refused for insufficient funds; one that never got a definite answer is
// unknown, and may or may not have happened.
type bankOutput struct {
	posted  bool
	refused bool
	unknown bool
	balance int64 // read
}

// bankModel is the sequential bank, one Porcupine partition per group.
var bankModel = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		parts := make([][]porcupine.Operation, bankGroups)
		for _, op := range history {
			g := op.Input.(bankInput).group
			parts[g] = append(parts[g], op)
		}
		return parts
	},
	Init: func() []any {
		var s bankState
		for i := range s {
			s[i] = bankInitial
		}
		return []any{s}
	},
	Step: func(state, input, output any) []any {
		s, in, out := state.(bankState), input.(bankInput), output.(bankOutput)
		if in.read {
			if s[in.from] == out.balance {
				return []any{s}
			}
			return nil
		}
		can := s[in.from] >= in.amount
		moved := s
		moved[in.from] -= in.amount
		moved[in.to] += in.amount
		switch {
		case out.unknown && can:
			return []any{s, moved}
		case out.unknown, out.refused && !can:
			return []any{s}
		case out.posted && can:
			return []any{moved}
		}
		return nil
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(bankInput), output.(bankOutput)
		if in.read {
			return fmt.Sprintf("read a%d → %d", in.from, out.balance)
		}
		result := "posted"
		switch {
		case out.refused:
			result = "refused"
		case out.unknown:
			result = "unknown"
		}
		return fmt.Sprintf("a%d → a%d %d: %s", in.from, in.to, in.amount, result)
	},
	DescribeState: func(state any) string {
		s := state.(bankState)
		parts := make([]string, len(s))
		for i, v := range s {
			parts[i] = fmt.Sprintf("a%d=%d", i, v)
		}
		return strings.Join(parts, " ")
	},
}

// history records operations as clients see them. Safe for concurrent use.
type history struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
}

func newHistory() *history { return &history{start: time.Now()} }

func (h *history) now() int64 { return time.Since(h.start).Nanoseconds() }

func (h *history) add(client int, in bankInput, call int64, out bankOutput, ret int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
}

// linearizability is the verdict on a history.
type linearizability struct {
	ops    int
	result porcupine.CheckResult
	html   string // the visualization, written when the history is not linearizable
}

func (l linearizability) String() string {
	verdict := map[porcupine.CheckResult]string{porcupine.Ok: "yes", porcupine.Illegal: "no", porcupine.Unknown: "unknown (the checker timed out)"}[l.result]
	s := fmt.Sprintf("operations checked %d, linearizable: %s", l.ops, verdict)
	if l.html != "" {
		s += " (history: " + l.html + ")"
	}
	return s
}

// check runs Porcupine on the history. When it is not linearizable, or the
// check did not finish, it writes Porcupine's visualization to htmlPath.
func (h *history) check(t *testing.T, htmlPath string) linearizability {
	h.mu.Lock()
	ops := append([]porcupine.Operation(nil), h.ops...)
	h.mu.Unlock()
	model := bankModel.ToModel()
	res, info := porcupine.CheckOperationsVerbose(model, ops, time.Minute)
	v := linearizability{ops: len(ops), result: res}
	if res != porcupine.Ok {
		if err := porcupine.VisualizePath(model, info, htmlPath); err != nil {
			t.Errorf("write the history's visualization: %v", err)
		} else {
			v.html = htmlPath
		}
	}
	return v
}

// bank is the clients' side: the accounts and the load on them.
type bank struct {
	t        *testing.T
	fleet    *fleet
	accounts [bankGroups][bankAccounts]string // ledger account ids
	hist     *history
	stop     <-chan struct{} // closed when the load ends
	mu       sync.Mutex
	posted   []string // ids of acknowledged transfers
	sent     int
}

// setupBank opens the accounts and gives each its opening balance, before
// the history starts.
func setupBank(t *testing.T, f *fleet, stop <-chan struct{}) *bank {
	b := &bank{t: t, fleet: f, stop: stop}
	must := func(path string, body any) map[string]any {
		t.Helper()
		status, out, err := f.call(0, "POST", path, adminKey, "", body)
		if err != nil || status != 201 {
			t.Fatalf("POST %s: %d %v %v", path, status, out, err)
		}
		return out
	}
	must("/v1/ledger/accounts", map[string]any{"code": "bank:funding:CNY", "currency": "CNY", "normal_balance": "debit"})
	for g := range bankGroups {
		for a := range bankAccounts {
			acct := must("/v1/ledger/accounts", map[string]any{"code": fmt.Sprintf("bank:g%d:a%d:CNY", g, a),
				"currency": "CNY", "normal_balance": "credit", "no_overdraft": true})
			b.accounts[g][a] = acct["id"].(string)
			must("/v1/ledger/transfers", map[string]any{"code": "bank_open", "postings": []map[string]any{
				{"account": "bank:funding:CNY", "debit": minor(bankInitial)},
				{"account": b.accounts[g][a], "credit": minor(bankInitial)}}})
		}
	}
	b.hist = newHistory()
	return b
}

// worker moves money and reads balances until the load stops.
func (b *bank) worker(ctx context.Context, w int) {
	rng := rand.New(rand.NewPCG(uint64(w), 23))
	for n := 0; ; n++ {
		select {
		case <-b.stop:
			return
		default:
		}
		g := rng.IntN(bankGroups)
		if rng.IntN(10) < 3 {
			_ = b.read(ctx, w, g, rng.IntN(bankAccounts))
			continue
		}
		from := rng.IntN(bankAccounts)
		to := (from + 1 + rng.IntN(bankAccounts-1)) % bankAccounts
		b.transfer(ctx, w, n, bankInput{group: g, from: from, to: to, amount: 1 + rng.Int64N(60)})
	}
}

// transfer posts one transfer, retrying with its Idempotency-Key on any
// replica until the answer is definite: posted (201) or refused for
// insufficient funds (402). After the load stops it keeps trying, for at
// most a claim's lease and a half, so that requests cut off by a fault
// end up definite too; one that never does is recorded as unknown.
func (b *bank) transfer(ctx context.Context, w, n int, in bankInput) {
	key := fmt.Sprintf("bank-%d-%d", w, n)
	body := map[string]any{"code": "bank_transfer", "metadata": map[string]string{"key": key}, "postings": []map[string]any{
		{"account": b.accounts[in.group][in.from], "debit": minor(in.amount)},
		{"account": b.accounts[in.group][in.to], "credit": minor(in.amount)}}}
	call := b.hist.now()
	var giveUp time.Time // set when the load stops
	for ctx.Err() == nil && (giveUp.IsZero() || time.Now().Before(giveUp)) {
		b.count()
		status, out, err := b.fleet.call(rand.IntN(len(b.fleet.addrs)), "POST", "/v1/ledger/transfers", adminKey, key, body)
		switch {
		case err == nil && status == 201:
			b.mu.Lock()
			b.posted = append(b.posted, out["id"].(string))
			b.mu.Unlock()
			b.hist.add(w, in, call, bankOutput{posted: true}, b.hist.now())
			return
		case err == nil && status == 402:
			b.hist.add(w, in, call, bankOutput{refused: true}, b.hist.now())
			return
		case err == nil && status < 500 && status != 409 && status != 429:
			b.t.Errorf("bank transfer %s: unexpected %d %v", key, status, out)
			return
		}
		select {
		case <-b.stop:
			if giveUp.IsZero() {
				giveUp = time.Now().Add(90 * time.Second)
			}
		default:
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.hist.add(w, in, call, bankOutput{unknown: true}, 1<<62)
}

// read reads one balance through any replica and reports whether it got
// an answer. A read without one changed nothing and is left out of the
// history.
func (b *bank) read(ctx context.Context, w, g, a int) bool {
	call := b.hist.now()
	b.count()
	status, out, err := b.fleet.call(rand.IntN(len(b.fleet.addrs)), "GET", "/v1/ledger/accounts/"+b.accounts[g][a], adminKey, "", nil)
	if err != nil || status != 200 || ctx.Err() != nil {
		time.Sleep(50 * time.Millisecond)
		return false
	}
	bal, err := decimal.NewFromString(fmt.Sprint(out["balance"]))
	if err != nil {
		b.t.Errorf("bank read: balance %v: %v", out["balance"], err)
		return false
	}
	b.hist.add(w, bankInput{group: g, read: true, from: a}, call, bankOutput{balance: bal.Shift(2).IntPart()}, b.hist.now())
	return true
}

// readAll reads every balance once the load has stopped, so the history
// ends with the final state.
func (b *bank) readAll(ctx context.Context, client int) {
	for g := range bankGroups {
		for a := range bankAccounts {
			for try := 0; try < 100; try++ {
				if b.read(ctx, client, g, a) {
					break
				}
			}
		}
	}
}

func (b *bank) count() {
	b.mu.Lock()
	b.sent++
	b.mu.Unlock()
}

// minor formats minor units of CNY as a decimal string.
func minor(v int64) string { return decimal.New(v, -2).StringFixed(2) }

// reportDir is where reports and visualizations go: CHAOS_REPORT_DIR, or
// minipay-chaos in the temporary directory.
func reportDir(t *testing.T) string {
	dir := os.Getenv("CHAOS_REPORT_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "minipay-chaos")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeReport writes a test's report to reportDir and returns its path.
func writeReport(t *testing.T, report string) string {
	path := filepath.Join(reportDir(t), t.Name()+".txt")
	if err := os.WriteFile(path, []byte(report), 0o644); err != nil {
		t.Error(err)
	}
	return path
}

// htmlPath is where a test's history visualization goes.
func htmlPath(t *testing.T) string {
	return filepath.Join(reportDir(t), t.Name()+"-history.html")
}
