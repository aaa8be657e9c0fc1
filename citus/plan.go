// Package citus spreads minipay's schema over a Citus cluster. When the
// database has the citus extension, Distribute (run by every migration,
// after the migrations) turns each table into what Plan says: a table
// sharded over the workers by a column, a reference table copied to every
// node, or a table that stays on the coordinator. On a database without
// Citus it does nothing, so the single-node schema and its speed are those
// of the migrations alone.
//
// The plan is one table in code so that a new table cannot be forgotten:
// the package's test fails for any table of the schema that has no row
// here. docs/scaling.md explains each choice.
package citus

// Kind is where a table's rows live on a Citus cluster.
type Kind int

const (
	// Distributed tables are hash-sharded over the workers by Column;
	// tables with the same ColocateWith keep rows of equal values on the
	// same worker, so a transaction over them stays on one node.
	Distributed Kind = iota + 1
	// Reference tables are copied to every node: read everywhere (joins
	// with any distributed table stay on the worker), written rarely,
	// every write going to all nodes in one distributed transaction.
	Reference
	// Coordinator tables stay on the coordinator, added to Citus's
	// metadata so that they can join distributed and reference tables.
	// They keep every constraint, trigger and lock of the single-node
	// schema; what they hold is bounded by the coordinator.
	Coordinator
	// Local tables are left alone: plain PostgreSQL tables of the
	// coordinator, planned and executed by PostgreSQL alone exactly as on
	// a single node, written in the same transactions as distributed
	// tables (the coordinator is one participant of the transaction). Nothing may
	// join them with distributed tables or give them foreign keys to
	// reference tables.
	Local
)

func (k Kind) String() string {
	switch k {
	case Distributed:
		return "distributed"
	case Reference:
		return "reference"
	case Coordinator:
		return "coordinator"
	case Local:
		return "local"
	}
	return "unknown"
}

// Table is the plan for one table.
type Table struct {
	Name         string
	Kind         Kind
	Column       string // distribution column, for Distributed
	ColocateWith string // a Distributed table to co-locate with, or "" for a group of its own
	// DropOnCitus names constraints that Citus cannot keep for this plan
	// (foreign keys between tables sharded differently), dropped when the
	// table is distributed. Why each is safe to lose is in Why.
	DropOnCitus []string
	Why         string
}

// Plan is the whole schema, in the order Distribute applies it: the tables
// a foreign key points to come before the tables that point to them.
var Plan = []Table{
	// Tenancy, keys and settings: read by every request, written rarely.
	{Name: "developers", Kind: Reference, Why: "read with every app; a handful of rows per developer, written at sign-up"},
	{Name: "apps", Kind: Reference, Why: "read by every authenticated request; written when an app is made or changed"},
	{Name: "api_keys", Kind: Reference, Why: "every request looks its key up by hash (unique across all keys); written when keys roll"},
	{Name: "settings", Kind: Reference, Why: "server-wide settings every replica reads"},
	{Name: "console_sessions", Kind: Reference, Why: "refers to api_keys; written at human pace by the console"},
	{Name: "demo_identity", Kind: Reference, Why: "one row, of minipay dev"},

	// The ledger stays on the coordinator but for the balance shards of
	// its hot accounts (docs/scaling.md: what distributing the rest needs,
	// and why not yet).
	{Name: "ledger_accounts", Kind: Local, Why: "account ids, codes and seqs are unique across the ledger; wallets' no_overdraft balances are checked and updated with every payment (as a reference table, each of those updates would go to every node)"},
	{Name: "ledger_balance_shards", Kind: Distributed, Column: "shard",
		Why: "the hot accounts' balances (the platform's fee account, developers' pending accounts) spread over the workers: each poster worker adds its groups' totals to its own shard row, routed to the worker that holds that shard; reads that need the ledger whole take the ledger's fence (ledger/fence.go)"},
	{Name: "ledger_transfers", Kind: Local, Why: "transfer ids are unique, and a pending transfer can be resolved once (unique indexes over the whole ledger); append-only trigger"},
	{Name: "ledger_postings", Kind: Local, Why: "written with their transfers in the same group commit, and joined with them by every read; append-only trigger"},
	{Name: "ledger_expiring", Kind: Local, Why: "the sweeper's queue of pending transfers with a timeout, joined with ledger_transfers"},

	// Payments: the session and the payment share their id (cs_…), so a
	// checkout's session and payment rows are on one worker.
	{Name: "checkout_sessions", Kind: Distributed, Column: "id", Why: "every statement on a session names its id"},
	{Name: "payments", Kind: Distributed, Column: "id", ColocateWith: "checkout_sessions", Why: "a payment's id is its session's (or invoice's) id: confirm writes both on one worker"},
	{Name: "refunds", Kind: Distributed, Column: "id", ColocateWith: "checkout_sessions",
		DropOnCitus: []string{"refunds_payment_id_fkey"},
		Why:         "looked up by id; the refund is inserted in the transaction that locks and updates its payment row, which is what keeps refunds within the payment"},
	{Name: "disputes", Kind: Coordinator, DropOnCitus: []string{"disputes_payment_id_fkey"},
		Why: "one open dispute per payment is a unique index over all disputes; few rows; its payment is locked and updated in the same transaction"},
	{Name: "balance_transactions", Kind: Coordinator,
		Why: "settlement reads it with its payouts and joins it with payments on the payment id, not a distribution column; one row per payment, written in the ledger's transaction, which is on the coordinator already"},
	{Name: "idempotency_keys", Kind: Distributed, Column: "scope", Why: "every statement names the key's scope (the app)"},

	// Subscriptions: a renewal writes its invoice and moves its
	// subscription in the ledger's transaction, which is on the coordinator
	// already, and the renewer claims due subscriptions with FOR UPDATE SKIP
	// LOCKED, which Citus refuses over distributed tables. They are read
	// with their invoices' payments (distributed), hence on the coordinator
	// in Citus's metadata rather than plain local tables.
	{Name: "subscription_plans", Kind: Coordinator, Why: "read with every subscription (joined); a few rows per app, written at human pace"},
	{Name: "subscriptions", Kind: Coordinator, Why: "claimed by the renewer with FOR UPDATE SKIP LOCKED and updated in the ledger's transaction with the charge"},
	{Name: "subscription_invoices", Kind: Coordinator, Why: "inserted in the ledger's transaction of the charge, unique per (subscription, period) for exactly-once renewals; read joined with its payment"},
	{Name: "test_clocks", Kind: Coordinator, Why: "sandbox only; referenced by subscriptions"},

	// The event outbox and webhook deliveries.
	{Name: "events", Kind: Local, Why: "the feed orders events by the inserting transaction's id (xid8) against the coordinator's snapshot, and an insert fans out to deliveries by a statement trigger"},
	{Name: "webhook_deliveries", Kind: Local, Why: "dispatchers claim due rows with FOR UPDATE SKIP LOCKED, which Citus refuses over distributed tables"},
	{Name: "webhook_endpoints", Kind: Local, Why: "joined by the fan-out trigger of every event insert with its transition table, which Citus cannot plan with a Citus table"},
	{Name: "webhook_attempts", Kind: Local, Why: "written with the delivery it reports, in the dispatcher's transaction"},

	// Settlement: once a day, a few rows per developer, written by
	// transactions that may first have read distributed tables over every
	// worker (as reference tables, Citus refuses their writes after such a
	// parallel read in the same transaction).
	{Name: "settlement_runs", Kind: Coordinator, Why: "one row per run, locked (FOR UPDATE) by the replica that runs it"},
	{Name: "settlement_items", Kind: Coordinator, Why: "one row per developer and currency per run, made from a multi-shard aggregate of balance_transactions; payout ids are unique"},
	{Name: "payouts", Kind: Coordinator, Why: "one per developer per run, joined with balance_transactions when a run marks what it paid; transfer ids are unique"},

	// Bookkeeping of the migrations themselves.
	{Name: "schema_migrations", Kind: Local, Why: "the migration tool's own table, read and written by migrate only"},
}

// Lookup returns the plan of table name.
func Lookup(name string) (Table, bool) {
	for _, t := range Plan {
		if t.Name == name {
			return t, true
		}
	}
	return Table{}, false
}
