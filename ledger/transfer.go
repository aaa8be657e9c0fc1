package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/minipay/minipay/internal/null"
)

// Status is the state of a transfer.
type Status string

// A transfer is posted, or pending until it is posted or voided.
const (
	StatusPosted  Status = "posted"
	StatusPending Status = "pending"
	StatusVoided  Status = "voided"
)

// Limits on what one transfer may carry.
const (
	PostingsMax = 32
	// MetadataKeysMax bounds the metadata keys a caller (an app, an
	// operator) gives; a transfer has room for SystemKeysMax more.
	MetadataKeysMax = 50
	// SystemKeysMax bounds the keys minipay itself adds to a transfer, all
	// named with SystemKeyPrefix (see WithSystemKeys).
	SystemKeysMax       = 14
	MetadataKeyLenMax   = 40
	MetadataValueLenMax = 500
	TransferIDLenMax    = 64
	TimeoutMax          = 30 * 24 * time.Hour
)

// Posting moves money into or out of one account: exactly one of Debit and
// Credit is positive, in minor units of the account's currency.
type Posting struct {
	// Account is the account's id or code on input, its id on output.
	Account  string
	Debit    int64
	Credit   int64
	Currency string // set on output
}

// Transfer is a set of postings that balance in every currency, written
// atomically. Its ID is chosen by the caller and is the ledger's idempotency
// key: posting the same ID again returns the first transfer, and posting it
// with different content is ErrIdempotencyConflict.
type Transfer struct {
	// ID: 1–64 letters, digits, '_', '-' or '.'. Ids containing ':' are
	// reserved for transfers the ledger derives (resolutions, reversals).
	ID       string
	Code     string // what kind of movement: "topup", "payment", "refund" …
	Postings []Posting
	// Pending places a hold: the amounts count against available balances
	// until the transfer is posted (PostPending) or voided (VoidPending).
	Pending bool
	// Timeout, for a pending transfer, voids it automatically once it has
	// passed (whole seconds, at most TimeoutMax). Zero means never.
	Timeout  time.Duration
	Metadata map[string]string

	// Set by the ledger.
	Status     Status
	Created    time.Time
	ExpiresAt  time.Time // zero unless pending with a timeout
	PendingID  string    // for the post or void of a pending transfer: that transfer
	ReversesID string    // for a reversal: the transfer it reverses
	ResolvedBy string    // for a resolved pending transfer: the id of its post or void
	// Replayed: Post or Reverse found this id already written with the same
	// content, so nothing was written and no attached statement ran; the
	// caller's own view of what it attached is not what committed.
	Replayed bool
}

// kind is how a transfer is stored.
type kind string

const (
	kindPosted      kind = "posted"
	kindPending     kind = "pending"
	kindPostPending kind = "post_pending"
	kindVoidPending kind = "void_pending"
)

func validTransferID(s string) bool {
	if len(s) == 0 || len(s) > TransferIDLenMax {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}

// SystemKeyPrefix starts every metadata key that minipay writes itself,
// and no other: callers may not use it, so the system's keys in the ledger
// (which session a payment paid, which app, which refund) are always the
// system's word.
const SystemKeyPrefix = "minipay_"

// ValidateMetadata checks metadata a caller gives against the limits every
// minipay object shares: at most 50 keys, keys of 1–40 characters, values
// of at most 500, all valid UTF-8, and no key in minipay's own namespace
// (SystemKeyPrefix).
func ValidateMetadata(md map[string]string) error {
	if len(md) > MetadataKeysMax {
		return fieldErr("metadata", fmt.Errorf("%w: at most %d keys, got %d", ErrMetadataInvalid, MetadataKeysMax, len(md)))
	}
	for k := range md {
		if strings.HasPrefix(k, SystemKeyPrefix) {
			return fieldErr("metadata", fmt.Errorf("%w: keys starting with %q are reserved for minipay's own, got %q",
				ErrMetadataInvalid, SystemKeyPrefix, k))
		}
	}
	return validateEntries(md)
}

func validateEntries(md map[string]string) error {
	for k, v := range md {
		switch {
		case k == "" || utf8.RuneCountInString(k) > MetadataKeyLenMax || !utf8.ValidString(k):
			return fieldErr("metadata", fmt.Errorf("%w: key %q must be 1–%d characters", ErrMetadataInvalid, k, MetadataKeyLenMax))
		case utf8.RuneCountInString(v) > MetadataValueLenMax || !utf8.ValidString(v):
			return fieldErr("metadata["+k+"]", fmt.Errorf("%w: value must be at most %d characters", ErrMetadataInvalid, MetadataValueLenMax))
		}
	}
	return nil
}

// validateTransferMetadata checks a transfer's metadata: at most
// MetadataKeysMax of the caller's keys and SystemKeysMax of minipay's.
// Whether a caller used minipay's namespace is checked where callers'
// metadata comes in (ValidateMetadata); here it is room that is checked.
func validateTransferMetadata(md map[string]string) error {
	system := 0
	for k := range md {
		if strings.HasPrefix(k, SystemKeyPrefix) {
			system++
		}
	}
	if system > SystemKeysMax || len(md)-system > MetadataKeysMax {
		return fieldErr("metadata", fmt.Errorf("%w: at most %d keys and %d of minipay's, got %d and %d",
			ErrMetadataInvalid, MetadataKeysMax, SystemKeysMax, len(md)-system, system))
	}
	return validateEntries(md)
}

// WithSystemKeys is the metadata of a transfer that minipay makes for a
// caller's object: the caller's keys, beside system, minipay's own keys
// (each named with SystemKeyPrefix, at most SystemKeysMax). Keys of the
// caller's in minipay's namespace, stored before it was reserved, are left
// out: a system key says what minipay wrote. The caller's at most
// MetadataKeysMax keys and the system's always fit a transfer together.
func WithSystemKeys(caller, system map[string]string) map[string]string {
	if len(system) > SystemKeysMax {
		panic(fmt.Sprintf("ledger: %d system metadata keys, more than SystemKeysMax", len(system)))
	}
	md := make(map[string]string, len(caller)+len(system))
	for k, v := range caller {
		if !strings.HasPrefix(k, SystemKeyPrefix) {
			md[k] = v
		}
	}
	for k, v := range system {
		if !strings.HasPrefix(k, SystemKeyPrefix) {
			panic("ledger: system metadata key " + k + " outside " + SystemKeyPrefix)
		}
		md[k] = v
	}
	return md
}

// validateShape checks what can be checked without the database.
func (t *Transfer) validateShape() error {
	if !validTransferID(t.ID) {
		return fieldErr("id", fmt.Errorf("%w: id must be 1–%d letters, digits, '_', '-' or '.'", ErrTransferInvalid, TransferIDLenMax))
	}
	if !validCode(t.Code, 32) {
		return fieldErr("code", fmt.Errorf("%w: code must be 1–32 letters, digits or \"_:.-\"", ErrTransferInvalid))
	}
	if len(t.Postings) < 2 || len(t.Postings) > PostingsMax {
		return fieldErr("postings", fmt.Errorf("%w: a transfer has 2–%d postings, got %d", ErrTransferInvalid, PostingsMax, len(t.Postings)))
	}
	for i, p := range t.Postings {
		// The field's name is formatted only for a refusal: every transfer
		// passes through here.
		switch {
		case p.Debit < 0 || p.Credit < 0:
			return fieldErr(fmt.Sprintf("postings[%d]", i), ErrAmountNotPositive)
		case (p.Debit == 0) == (p.Credit == 0):
			return fieldErr(fmt.Sprintf("postings[%d]", i), fmt.Errorf("%w: a posting has exactly one of debit and credit, greater than zero", ErrTransferInvalid))
		}
	}
	if t.Timeout < 0 || t.Timeout > TimeoutMax || t.Timeout%time.Second != 0 {
		return fieldErr("timeout", fmt.Errorf("%w: timeout must be whole seconds between 0 and %s", ErrTransferInvalid, TimeoutMax))
	}
	if t.Timeout > 0 && !t.Pending {
		return fieldErr("timeout", fmt.Errorf("%w: only a pending transfer has a timeout", ErrTransferInvalid))
	}
	return validateTransferMetadata(t.Metadata)
}

// prepare validates t against its accounts and turns it into an op.
func (l *Ledger) prepare(ctx context.Context, t Transfer) (*op, error) {
	if err := t.validateShape(); err != nil {
		return nil, err
	}
	var buf [PostingsMax]string // on the stack: validateShape bounds the postings
	refs := buf[:len(t.Postings)]
	for i, p := range t.Postings {
		refs[i] = p.Account
	}
	accts, err := l.lookupAccounts(ctx, refs)
	if err != nil {
		return nil, err
	}
	o := &op{id: t.ID, code: t.Code, kind: kindPosted, expiresIn: t.Timeout}
	if t.Pending {
		o.kind = kindPending
	}
	o.deltas = make([]delta, 0, len(accts))
	for i, a := range accts {
		for _, earlier := range accts[:i] { // at most PostingsMax: cheaper than a map
			if earlier.id == a.id {
				return nil, fieldErr(fmt.Sprintf("postings[%d].account", i), fmt.Errorf("%w: %s", ErrDuplicateAccount, a.code))
			}
		}
		d := delta{acct: a}
		p := t.Postings[i]
		if t.Pending {
			d.dpe, d.cpe = p.Debit, p.Credit
		} else {
			d.dp, d.cp = p.Debit, p.Credit
		}
		o.deltas = append(o.deltas, d)
	}
	if err := checkBalanced(o.deltas); err != nil {
		return nil, err
	}
	if o.metadata, err = encodeMetadata(t.Metadata); err != nil {
		return nil, err
	}
	o.hash = contentHash(o, t.Metadata)
	return o, nil
}

// checkBalanced verifies invariant 1: per currency, debits equal credits,
// posted and pending alike. Sums are checked for overflow, so a transfer of
// amounts near the int64 limit is refused rather than wrapped.
func checkBalanced(deltas []delta) error {
	// A transfer has at most PostingsMax postings and almost always one
	// currency: a small slice beats a map.
	type sums struct {
		currency       string
		d, c, dpe, cpe int64
	}
	var buf [2]sums
	per := buf[:0]
	for _, d := range deltas {
		i := 0
		for i < len(per) && per[i].currency != d.acct.currency {
			i++
		}
		if i == len(per) {
			per = append(per, sums{currency: d.acct.currency})
		}
		s := &per[i]
		var ok [4]bool
		s.d, ok[0] = addChecked(s.d, d.dp)
		s.c, ok[1] = addChecked(s.c, d.cp)
		s.dpe, ok[2] = addChecked(s.dpe, d.dpe)
		s.cpe, ok[3] = addChecked(s.cpe, d.cpe)
		if !ok[0] || !ok[1] || !ok[2] || !ok[3] {
			return fieldErr("postings", fmt.Errorf("%w: the postings' total overflows", ErrAmountTooLarge))
		}
	}
	for _, s := range per {
		if s.d != s.c || s.dpe != s.cpe {
			if len(per) > 1 {
				return fieldErr("postings", fmt.Errorf("%w: the postings mix currencies and %s does not balance", ErrUnbalanced, s.currency))
			}
			return fieldErr("postings", fmt.Errorf("%w: debits %s, credits %s %s", ErrUnbalanced,
				FormatAmount(s.currency, s.d+s.dpe), FormatAmount(s.currency, s.c+s.cpe), s.currency))
		}
	}
	return nil
}

// addChecked returns a+b and whether it did not overflow.
func addChecked(a, b int64) (int64, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}

func encodeMetadata(md map[string]string) (*string, error) {
	if len(md) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(md) // keys sorted: the encoding is canonical
	if err != nil {
		return nil, fmt.Errorf("encode metadata: %w", err)
	}
	s := string(b)
	return &s, nil
}

// contentHash fingerprints what a transfer does, so a repeated id can be
// told apart from a reused one. Accounts are hashed by id, so naming an
// account by code or by id makes no difference.
func contentHash(o *op, md map[string]string) []byte {
	// Most transfers fit the buffer on the stack; larger ones (many
	// postings, metadata) grow it on the heap.
	var buf [512]byte
	b := appendHashString(buf[:0], "v1")
	b = appendHashString(b, string(o.kind))
	b = appendHashString(b, o.code)
	b = appendHashString(b, o.pendingID)
	b = appendHashString(b, o.reversesID)
	b = binary.BigEndian.AppendUint64(b, uint64(o.expiresIn))
	b = binary.BigEndian.AppendUint64(b, uint64(len(md)))
	if len(md) > 0 {
		keys := make([]string, 0, len(md))
		for k := range md {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			b = appendHashString(b, k)
			b = appendHashString(b, md[k])
		}
	}
	b = binary.BigEndian.AppendUint64(b, uint64(len(o.deltas)))
	for _, d := range o.deltas {
		b = appendHashString(b, d.acct.id)
		b = binary.BigEndian.AppendUint64(b, uint64(d.dp))
		b = binary.BigEndian.AppendUint64(b, uint64(d.cp))
		b = binary.BigEndian.AppendUint64(b, uint64(d.dpe))
		b = binary.BigEndian.AppendUint64(b, uint64(d.cpe))
	}
	sum := sha256.Sum256(b)
	return sum[:]
}

// appendHashString appends s to a content hash's input, length first, so
// that no two sequences of strings encode alike.
func appendHashString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

// GetTransfer returns the transfer with the given id and its current status.
func (l *Ledger) GetTransfer(ctx context.Context, id string) (Transfer, error) {
	return getTransfer(ctx, l.db, id)
}

// querier is what reads need: a pool, a connection or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func getTransfer(ctx context.Context, q querier, id string) (Transfer, error) {
	var (
		t          Transfer
		seq        int64
		k          kind
		pendingID  *string
		reversesID *string
		expires    *time.Time
		md         []byte
		resolvedBy *string
		resolution *kind
	)
	err := q.QueryRow(ctx, `
		SELECT t.seq, t.id, t.code, t.kind, p.id, rv.id, t.expires_at, t.metadata, t.created_at, r.id, r.kind
		FROM ledger_transfers t
		LEFT JOIN ledger_transfers p ON p.seq = t.pending_seq
		LEFT JOIN ledger_transfers rv ON rv.seq = t.reverses_seq
		LEFT JOIN ledger_transfers r ON r.pending_seq = t.seq
		WHERE t.id = $1`, id).
		Scan(&seq, &t.ID, &t.Code, &k, &pendingID, &reversesID, &expires, &md, &t.Created, &resolvedBy, &resolution)
	if errors.Is(err, pgx.ErrNoRows) {
		return Transfer{}, fmt.Errorf("%w: %s", ErrTransferNotFound, id)
	}
	if err != nil {
		return Transfer{}, fmt.Errorf("get transfer %s: %w", id, err)
	}
	t.PendingID, t.ReversesID, t.ResolvedBy = null.Value(pendingID), null.Value(reversesID), null.Value(resolvedBy)
	if expires != nil {
		t.ExpiresAt = *expires
	}
	t.Pending = k == kindPending
	t.Status = statusOf(k, resolution)
	if len(md) > 0 {
		if err := json.Unmarshal(md, &t.Metadata); err != nil {
			return Transfer{}, fmt.Errorf("get transfer %s: metadata: %w", id, err)
		}
	}
	if t.Postings, err = transferPostings(ctx, q, seq, k); err != nil {
		return Transfer{}, err
	}
	return t, nil
}

func statusOf(k kind, resolution *kind) Status {
	switch {
	case k == kindVoidPending || resolution != nil && *resolution == kindVoidPending:
		return StatusVoided
	case k == kindPending && resolution == nil:
		return StatusPending
	default:
		return StatusPosted
	}
}

// transferPostings reads a transfer's postings as the amounts it moves: the
// posted amounts of a posted transfer or a post, the held amounts of a
// pending transfer, the released amounts of a void.
func transferPostings(ctx context.Context, q querier, seq int64, k kind) ([]Posting, error) {
	rows, err := q.Query(ctx, `
		SELECT a.id, a.currency, p.debits_posted, p.credits_posted, p.debits_pending, p.credits_pending
		FROM ledger_postings p JOIN ledger_accounts a ON a.seq = p.account_seq
		WHERE p.transfer_seq = $1 ORDER BY p.idx`, seq)
	if err != nil {
		return nil, fmt.Errorf("postings of transfer %d: %w", seq, err)
	}
	var (
		out              []Posting
		p                Posting
		dp, cp, dpe, cpe int64
	)
	_, err = pgx.ForEachRow(rows, []any{&p.Account, &p.Currency, &dp, &cp, &dpe, &cpe}, func() error {
		switch k {
		case kindPending:
			p.Debit, p.Credit = dpe, cpe
		case kindVoidPending:
			p.Debit, p.Credit = -dpe, -cpe
		default:
			p.Debit, p.Credit = dp, cp
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postings of transfer %d: %w", seq, err)
	}
	return out, nil
}

// transferFromOp renders an op the poster has just written.
func transferFromOp(o *op, created time.Time, md map[string]string) Transfer {
	t := Transfer{
		ID: o.id, Code: o.code, Metadata: md, Created: created,
		Pending: o.kind == kindPending, PendingID: o.pendingID, ReversesID: o.reversesID,
		Status: statusOf(o.kind, nil),
	}
	if o.expiresIn > 0 {
		t.ExpiresAt = created.Add(o.expiresIn)
	}
	for _, d := range o.deltas {
		p := Posting{Account: d.acct.id, Currency: d.acct.currency, Debit: d.dp, Credit: d.cp}
		if o.kind == kindPending {
			p.Debit, p.Credit = d.dpe, d.cpe
		}
		t.Postings = append(t.Postings, p)
	}
	return t
}
