package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/minipay/minipay/internal/pgdb"
	"github.com/minipay/minipay/ledger"
)

// The ledger workload, in equal parts: refunds (a merchant to a wallet),
// payments (a wallet, no_overdraft, to a merchant) and payments with a fee
// (a wallet to a merchant and the platform's fee account: every third
// transfer credits that one hot account).
const (
	benchWallets   = 10000
	benchMerchants = 100
	benchFunding   = 1_000_000_000_000 // minor units per wallet: never runs dry
)

// groupLog records the poster's groups during a run.
type groupLog struct {
	mu                  sync.Mutex
	sizes               []int
	read, write, commit time.Duration
	attempts            int
	cached              int
	unread              int
}

func (g *groupLog) observe(s ledger.BatchStats) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sizes = append(g.sizes, s.Ops)
	g.read += s.Read
	g.write += s.Write
	g.commit += s.Commit
	g.attempts += s.Attempts
	g.cached += s.Cached
	g.unread += s.Unread
}

func (g *groupLog) reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sizes, g.read, g.write, g.commit, g.attempts, g.cached, g.unread = nil, 0, 0, 0, 0, 0, 0
}

func benchLedger(ctx context.Context, o Options) (*Result, error) {
	if o.Clients == 0 {
		o.Clients = 64
	}
	if err := checkConnections(ctx, o); err != nil {
		return nil, err
	}
	dbURL, drop, err := freshDatabase(ctx, o.DatabaseURL, "ledger", o.Keep)
	if err != nil {
		return nil, err
	}
	defer drop()
	pool, _, err := pgdb.Setup(ctx, dbURL, 20)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	groups := &groupLog{}
	l := ledger.New(pool, ledger.Options{Observe: groups.observe, Workers: o.Workers, Linger: o.Linger})
	defer l.Close()
	accts, err := setupLedgerAccounts(ctx, l, pool)
	if err != nil {
		return nil, err
	}

	if o.Senders == 0 {
		o.Senders = 4096
	}
	res := &Result{Kind: "ledger", Unit: "transfers", Clients: o.Clients, Duration: o.Duration}
	load := func(ctx context.Context, tag string, rate float64, d, limit time.Duration) (openRun, error) {
		return postOpen(ctx, l, accts, o.Senders, tag, rate, d, limit)
	}
	var found maxRate
	if o.Rate > 0 {
		res.Clients = o.Senders
		groups.reset()
		if err := atRate(ctx, o, res, load, ledgerP99Limit, newCPUMeter(pool)); err != nil {
			return nil, err
		}
		res.Extra = append(res.Extra, groups.summary()...)
	} else {
		if err := closedLedger(ctx, o, l, accts, groups, res, newCPUMeter(pool)); err != nil {
			return nil, err
		}
		if o.FindMax {
			// The group statistics reported are those of the best rate;
			// the closed loop's keep their own names beside them.
			for i, kv := range res.Extra {
				if strings.HasPrefix(kv.Key, "group") {
					res.Extra[i].Key = "closed_loop_" + kv.Key
				}
			}
			var (
				best     []KV
				bestRate float64
			)
			hooks := findHooks{before: groups.reset, cpu: newCPUMeter(pool), after: func(p point) {
				if p.Pass && p.Rate >= bestRate {
					best, bestRate = groups.summary(), p.Rate
				}
			}}
			if found, err = findMax(ctx, o, res, load, ledgerP99Limit, hooks); err != nil {
				return nil, err
			}
			res.Extra = append(res.Extra, best...)
		}
	}

	tb, err := l.TrialBalance(ctx)
	if err != nil {
		return nil, err
	}
	res.Extra = append(res.Extra, KV{"trial_balanced", tb.Balanced})
	if !tb.Balanced {
		return nil, errors.New("the trial balance is not zero after the run")
	}
	l.Close()
	if o.FindMax {
		if err := ledgerCeiling(ctx, o, pool, dbURL, res, found); err != nil {
			return nil, err
		}
	}
	if o.NoBaseline {
		return res, nil
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE bench_commit (a int, b int)`); err != nil {
		return nil, err
	}
	pool.Close() // pgbench needs the connections
	if res.BaselineTPS, err = pgbench(ctx, dbURL, o.Clients, o.Duration, baselineScripts()...); err != nil {
		return nil, err
	}
	commitTPS, err := commitRate(ctx, dbURL, o.Clients, o.Duration)
	if err != nil {
		return nil, err
	}
	res.Extra = append(res.Extra, KV{"commit_tps", round(commitTPS, 1)})
	return res, nil
}

// closedLedger is the closed-loop measurement: o.Clients clients posting
// back to back, after a warm-up.
func closedLedger(ctx context.Context, o Options, l *ledger.Ledger, accts *benchAccounts, groups *groupLog, res *Result, cpu *cpuMeter) error {
	warm := min(2*time.Second, o.Duration/5)
	if _, _, err := postLoad(ctx, l, accts, o.Clients, warm, "warm"); err != nil {
		return err
	}
	groups.reset()
	stopProfile, err := profile(o.CPUProfile)
	if err != nil {
		return err
	}
	before := cpu.sample(ctx)
	n, lat, err := postLoad(ctx, l, accts, o.Clients, o.Duration, "run")
	after := cpu.sample(ctx)
	stopProfile()
	if err != nil {
		return err
	}
	res.Throughput = float64(n) / o.Duration.Seconds()
	p := lat.percentiles(0.5, 0.99)
	res.P50, res.P99 = p[0], p[1]
	res.Extra = append(res.Extra, groups.summary()...)
	res.Extra = append(res.Extra, perOp(before, after, n, "transfer")...)
	return nil
}

// ledgerCeiling measures the ceiling on the benchmark's database, adds it
// to res and draws the find-max plot with it.
func ledgerCeiling(ctx context.Context, o Options, pool *pgxpool.Pool, dbURL string, res *Result, found maxRate) error {
	c, err := measureCeiling(ctx, pool, dbURL, o.Duration/2)
	if err != nil {
		return err
	}
	res.Extra = append(res.Extra,
		KV{"ceiling_tps", round(c.tps(), 1)},
		KV{"ceiling_tps_1_stream", round(c.one, 1)},
		KV{"ceiling_tps_2_streams", round(c.two, 1)},
		KV{"ceiling_ratio", round(found.best.Rate/c.tps(), 3)})
	res.Notes = append(res.Notes, "ceiling: the workload's rows written set-based by the database itself, 1,000 transfers a transaction, by one stream and by two; ceiling_ratio is max_rate over the better")
	return plotFindMax(o, res, found, ledgerP99Limit,
		marker{Rate: c.tps(), Label: "ceiling (set-based): " + thousands(c.tps()) + "/s", Color: "#24c"},
		marker{Rate: 0.6 * c.tps(), Label: "0.6 × ceiling", Color: "#a6c"})
}

func (g *groupLog) summary() []KV {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.sizes) == 0 {
		return nil
	}
	sizes := slices.Clone(g.sizes)
	slices.Sort(sizes)
	total := 0
	for _, s := range sizes {
		total += s
	}
	at := func(p float64) int { return sizes[int(p*float64(len(sizes)-1))] }
	busy := g.read + g.write + g.commit
	share := func(d time.Duration) float64 { return round(100*d.Seconds()/busy.Seconds(), 1) }
	return []KV{
		{"groups", len(sizes)},
		{"group_ms_mean", round(busy.Seconds()*1000/float64(len(sizes)), 2)},
		{"group_size_mean", round(float64(total)/float64(len(sizes)), 1)},
		{"group_size_p50", at(0.5)},
		{"group_size_p99", at(0.99)},
		{"group_size_max", sizes[len(sizes)-1]},
		{"group_attempts", g.attempts},
		// Wallet balances a group took from its worker's cache instead of
		// reading them, per transfer.
		{"group_balances_cached_per_transfer", round(float64(g.cached)/float64(total), 2)},
		// Attempts that read nothing before writing: one round trip.
		{"group_attempts_unread_pct", round(100*float64(g.unread)/float64(g.attempts), 1)},
		{"group_time_read_pct", share(g.read)},
		{"group_time_write_pct", share(g.write + g.commit)}, // COMMIT usually rides with the writes
	}
}

type benchAccounts struct {
	wallets, merchants []string
	fee, bank          string
}

// setupLedgerAccounts creates and funds the accounts of both the minipay run
// (through the ledger) and the pgbench baseline (plain ids the script can
// name: bw0…, bm0…, bfee, bbank), so both write to the same tables.
func setupLedgerAccounts(ctx context.Context, l *ledger.Ledger, pool *pgxpool.Pool) (*benchAccounts, error) {
	a := &benchAccounts{wallets: make([]string, benchWallets), merchants: make([]string, benchMerchants)}
	specs := []ledger.AccountSpec{
		{Code: "bench:bank", Currency: "CNY", NormalBalance: ledger.DebitNormal},
		{Code: "bench:fees", Currency: "CNY", NormalBalance: ledger.CreditNormal},
	}
	for i := 0; i < benchWallets; i++ {
		specs = append(specs, ledger.AccountSpec{Code: fmt.Sprintf("bench:wallet:%d", i), Currency: "CNY", NormalBalance: ledger.CreditNormal, NoOverdraft: true})
	}
	for i := 0; i < benchMerchants; i++ {
		specs = append(specs, ledger.AccountSpec{Code: fmt.Sprintf("bench:merchant:%d", i), Currency: "CNY", NormalBalance: ledger.CreditNormal})
	}
	ids, err := parallel(ctx, len(specs), func(i int) (string, error) {
		acct, err := l.CreateAccount(ctx, specs[i])
		return acct.ID, err
	})
	if err != nil {
		return nil, fmt.Errorf("create accounts: %w", err)
	}
	a.bank, a.fee = ids[0], ids[1]
	copy(a.wallets, ids[2:])
	copy(a.merchants, ids[2+benchWallets:])
	_, err = pool.Exec(ctx, `
		INSERT INTO ledger_accounts (id, code, currency, normal_balance, no_overdraft)
		SELECT 'bw' || i, 'baseline:wallet:' || i, 'CNY', 'credit', true FROM generate_series(0, $1 - 1) i
		UNION ALL SELECT 'bm' || i, 'baseline:merchant:' || i, 'CNY', 'credit', false FROM generate_series(0, $2 - 1) i
		UNION ALL SELECT 'bfee', 'baseline:fees', 'CNY', 'credit', false
		UNION ALL SELECT 'bbank', 'baseline:bank', 'CNY', 'debit', false`, benchWallets, benchMerchants)
	if err != nil {
		return nil, fmt.Errorf("baseline accounts: %w", err)
	}
	_, err = parallel(ctx, 2*benchWallets, func(i int) (string, error) {
		w, bank := a.wallets[i/2], a.bank
		if i%2 == 1 {
			w, bank = fmt.Sprintf("bw%d", i/2), "bbank"
		}
		_, err := l.Post(ctx, ledger.Transfer{ID: "fund-" + w, Code: "topup", Postings: []ledger.Posting{
			{Account: bank, Debit: benchFunding}, {Account: w, Credit: benchFunding}}})
		return "", err
	})
	if err != nil {
		return nil, fmt.Errorf("fund wallets: %w", err)
	}
	return a, nil
}

// parallel calls fn(0..n-1) from 64 goroutines and returns the results in order.
func parallel(ctx context.Context, n int, fn func(i int) (string, error)) ([]string, error) {
	out := make([]string, n)
	next := atomic.Int64{}
	var (
		wg       sync.WaitGroup
		firstErr atomic.Value
	)
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				s, err := fn(i)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				out[i] = s
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return nil, err
	}
	return out, ctx.Err()
}

// postLoad runs clients posting transfers for d and returns how many were
// posted and their latencies.
func postLoad(ctx context.Context, l *ledger.Ledger, a *benchAccounts, clients int, d time.Duration, tag string) (int64, latencies, error) {
	rngs := make([]*rand.Rand, clients)
	for c := range rngs {
		rngs[c] = rand.New(rand.NewPCG(uint64(c), uint64(time.Now().UnixNano())))
	}
	return closedLoop(ctx, clients, d, func(ctx context.Context, c, i int) error {
		_, err := l.Post(ctx, benchTransfer(rngs[c], a, fmt.Sprintf("%s-%d-%d", tag, c, i), i))
		return err
	})
}

// postOpen offers transfers at rate for d from senders goroutines.
func postOpen(ctx context.Context, l *ledger.Ledger, a *benchAccounts, senders int, tag string, rate float64, d, limit time.Duration) (openRun, error) {
	seed := uint64(time.Now().UnixNano())
	rngs := make([]*rand.Rand, senders)
	for s := range rngs {
		rngs[s] = rand.New(rand.NewPCG(uint64(s), seed))
	}
	return openLoop(ctx, rate, d, senders, limit, func(ctx context.Context, s int, i int64) error {
		_, err := l.Post(ctx, benchTransfer(rngs[s], a, tag+"-"+strconv.FormatInt(i, 10), int(i%3)))
		return err
	})
}

// benchTransfer is transfer number i of a client: a refund, a payment, or
// a payment with a fee, in turn.
func benchTransfer(rng *rand.Rand, a *benchAccounts, id string, i int) ledger.Transfer {
	amount := int64(rng.IntN(10000) + 100)
	wallet := a.wallets[rng.IntN(len(a.wallets))]
	merchant := a.merchants[rng.IntN(len(a.merchants))]
	switch i % 3 {
	case 0:
		return ledger.Transfer{ID: id, Code: "refund", Postings: []ledger.Posting{
			{Account: merchant, Debit: amount}, {Account: wallet, Credit: amount}}}
	case 1:
		return ledger.Transfer{ID: id, Code: "payment", Postings: []ledger.Posting{
			{Account: wallet, Debit: amount}, {Account: merchant, Credit: amount}}}
	default:
		fee := amount * 3 / 100
		return ledger.Transfer{ID: id, Code: "payment", Postings: []ledger.Posting{
			{Account: wallet, Debit: amount}, {Account: merchant, Credit: amount - fee}, {Account: a.fee, Credit: fee}}}
	}
}

// baselineScripts is the obvious ledger in plain SQL: one transaction per
// transfer that inserts the transfer and its postings into the same tables
// and updates every touched balance (the hot fee account included),
// checking no_overdraft wallets, in the same mix of refunds, payments and
// payments with a fee.
func baselineScripts() []script {
	const head = `\set w random(0, 9999)
\set m random(0, 99)
\set amt random(100, 10099)
BEGIN;
SELECT nextval('ledger_transfers_seq') AS tseq \gset
INSERT INTO ledger_transfers (seq, id, code, kind, content_hash, created_at)
  VALUES (:tseq, 'pgb-' || :tseq, 'payment', 'posted', '\x00', now());
`
	const posting = `(:tseq, %d, (SELECT seq FROM ledger_accounts WHERE id = %s), %s, %s, 0, 0, now())`
	insert := func(rows ...string) string {
		return "INSERT INTO ledger_postings (transfer_seq, idx, account_seq, debits_posted, credits_posted, debits_pending, credits_pending, created_at) VALUES " +
			strings.Join(rows, ", ") + ";\n"
	}
	const (
		debitWallet = `UPDATE ledger_accounts SET debits_posted = debits_posted + :amt
  WHERE id = 'bw' || :w AND credits_posted - debits_posted - debits_pending >= :amt;
`
		creditWallet  = "UPDATE ledger_accounts SET credits_posted = credits_posted + :amt WHERE id = 'bw' || :w;\n"
		debitMerchant = "UPDATE ledger_accounts SET debits_posted = debits_posted + :amt WHERE id = 'bm' || :m;\n"
	)
	refund := head + insert(fmt.Sprintf(posting, 0, "'bm' || :m", ":amt", "0"), fmt.Sprintf(posting, 1, "'bw' || :w", "0", ":amt")) +
		debitMerchant + creditWallet + "COMMIT;\n"
	pay := head + insert(fmt.Sprintf(posting, 0, "'bw' || :w", ":amt", "0"), fmt.Sprintf(posting, 1, "'bm' || :m", "0", ":amt")) +
		debitWallet + "UPDATE ledger_accounts SET credits_posted = credits_posted + :amt WHERE id = 'bm' || :m;\nCOMMIT;\n"
	payFee := head + "\\set fee :amt * 3 / 100\n" +
		insert(fmt.Sprintf(posting, 0, "'bw' || :w", ":amt", "0"), fmt.Sprintf(posting, 1, "'bm' || :m", "0", ":amt - :fee"), fmt.Sprintf(posting, 2, "'bfee'", "0", ":fee")) +
		debitWallet +
		"UPDATE ledger_accounts SET credits_posted = credits_posted + :amt - :fee WHERE id = 'bm' || :m;\n" +
		"UPDATE ledger_accounts SET credits_posted = credits_posted + :fee WHERE id = 'bfee';\nCOMMIT;\n"
	return []script{{name: "refund", body: refund, weight: 1}, {name: "pay", body: pay, weight: 1}, {name: "payfee", body: payFee, weight: 1}}
}
