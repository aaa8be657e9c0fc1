package ledger_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/minipay/minipay/ledger"
)

// TestSystemKeysAlwaysFit: a transfer holds a caller's 50 metadata keys and
// minipay's own beside them; callers may not use minipay's namespace, and
// neither side may overflow its room.
func TestSystemKeysAlwaysFit(t *testing.T) {
	l, _ := newLedger(t, ledger.Options{})
	ctx := ctxT(t)
	a := mustAccount(t, l, "a", "CNY", ledger.DebitNormal, false)
	b := mustAccount(t, l, "b", "CNY", ledger.CreditNormal, false)
	keys := func(prefix string, n int) map[string]string {
		md := map[string]string{}
		for i := range n {
			md[fmt.Sprintf("%s%02d", prefix, i)] = "v"
		}
		return md
	}
	caller := keys("k", ledger.MetadataKeysMax)
	caller["minipay_session"] = "cs_forged" // stored before the namespace was reserved
	system := keys(ledger.SystemKeyPrefix, ledger.SystemKeysMax-1)
	system["minipay_session"] = "cs_real"
	md := ledger.WithSystemKeys(caller, system)
	tr := transfer("full", "payment", 100, a.ID, b.ID)
	tr.Metadata = md
	got, err := l.Post(ctx, tr)
	if err != nil || len(got.Metadata) != ledger.MetadataKeysMax+ledger.SystemKeysMax || got.Metadata["minipay_session"] != "cs_real" {
		t.Fatalf("a full transfer: %v, %d keys, minipay_session %q", err, len(got.Metadata), got.Metadata["minipay_session"])
	}
	if err := ledger.ValidateMetadata(map[string]string{"minipay_x": "y"}); !errors.Is(err, ledger.ErrMetadataInvalid) {
		t.Fatalf("a caller's key in minipay's namespace: %v", err)
	}
	for name, md := range map[string]map[string]string{
		"51 caller keys":  keys("k", ledger.MetadataKeysMax+1),
		"too many system": keys(ledger.SystemKeyPrefix, ledger.SystemKeysMax+1),
	} {
		tr := transfer("over_"+name[:2], "payment", 100, a.ID, b.ID)
		tr.Metadata = md
		if _, err := l.Post(ctx, tr); !errors.Is(err, ledger.ErrMetadataInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
