package chaos_test

import (
	"os"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
)

// The checker must be able to fail: hand-made histories of the bank, some
// that a correct ledger could produce and some that it could not.
func TestBankModel(t *testing.T) {
	transfer := func(from, to int, amount int64) bankInput {
		return bankInput{from: from, to: to, amount: amount}
	}
	read := func(a int) bankInput { return bankInput{read: true, from: a} }
	posted, refused, unknown := bankOutput{posted: true}, bankOutput{refused: true}, bankOutput{unknown: true}
	balance := func(v int64) bankOutput { return bankOutput{balance: v} }
	op := func(client int, in bankInput, call int64, out bankOutput, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}
	}
	cases := []struct {
		name string
		ok   bool
		ops  []porcupine.Operation
	}{
		{"a read after a transfer sees it", true, []porcupine.Operation{
			op(0, transfer(0, 1, 50), 0, posted, 10), op(1, read(0), 11, balance(50), 12), op(1, read(1), 13, balance(150), 14)}},
		{"a read during a transfer may see either side", true, []porcupine.Operation{
			op(0, transfer(0, 1, 50), 0, posted, 10), op(1, read(0), 2, balance(100), 3), op(2, read(0), 4, balance(50), 5)}},
		{"a read after a transfer sees the balance before it (lost write)", false, []porcupine.Operation{
			op(0, transfer(0, 1, 50), 0, posted, 10), op(1, read(0), 20, balance(100), 30)}},
		{"a read goes back in time", false, []porcupine.Operation{
			op(0, transfer(0, 1, 50), 0, posted, 10), op(1, read(0), 2, balance(50), 3), op(2, read(0), 4, balance(100), 5)}},
		{"two transfers overdraw an account", false, []porcupine.Operation{
			op(0, transfer(0, 1, 70), 0, posted, 10), op(1, transfer(0, 2, 70), 5, posted, 15)}},
		{"a transfer is refused with the money there", false, []porcupine.Operation{
			op(0, transfer(0, 1, 10), 0, refused, 10)}},
		{"a refusal is explained by a concurrent transfer", true, []porcupine.Operation{
			op(0, transfer(0, 1, 70), 0, posted, 10), op(1, transfer(0, 2, 70), 5, refused, 15), op(2, read(2), 20, balance(100), 21)}},
		{"a transfer posted twice (duplicated)", false, []porcupine.Operation{
			op(0, transfer(0, 1, 30), 0, posted, 10), op(1, read(0), 20, balance(40), 21)}},
		{"an unknown transfer may have happened", true, []porcupine.Operation{
			op(0, transfer(0, 1, 30), 0, unknown, 1<<62), op(1, read(0), 20, balance(70), 21)}},
		{"an unknown transfer may not have happened", true, []porcupine.Operation{
			op(0, transfer(0, 1, 30), 0, unknown, 1<<62), op(1, read(0), 20, balance(100), 21)}},
		{"an unknown transfer happens once, not on and off", false, []porcupine.Operation{
			op(0, transfer(0, 1, 30), 0, unknown, 1<<62), op(1, read(0), 20, balance(70), 21), op(1, read(0), 30, balance(100), 31)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := porcupine.CheckOperations(bankModel.ToModel(), c.ops); got != c.ok {
				t.Errorf("linearizable = %v, want %v", got, c.ok)
			}
		})
	}
}

// TestHistoryCheckWritesVisualization: a non-linearizable history is
// reported as such and leaves Porcupine's visualization behind.
func TestHistoryCheckWritesVisualization(t *testing.T) {
	t.Setenv("CHAOS_REPORT_DIR", t.TempDir())
	h := newHistory()
	h.add(0, bankInput{group: 1, from: 0, to: 1, amount: 50}, 0, bankOutput{posted: true}, 10)
	h.add(1, bankInput{group: 1, read: true, from: 0}, 20, bankOutput{balance: 100}, 30)
	h.add(2, bankInput{group: 2, read: true, from: 2}, 5, bankOutput{balance: 100}, 6)
	v := h.check(t, htmlPath(t))
	if v.result != porcupine.Illegal || v.ops != 3 {
		t.Fatalf("check = %+v, want 3 operations, not linearizable", v)
	}
	if !strings.Contains(v.String(), "linearizable: no") {
		t.Errorf("verdict reads %q", v.String())
	}
	html, err := os.ReadFile(v.html)
	if err != nil || !strings.Contains(string(html), "a0 → a1 50: posted") {
		t.Errorf("visualization at %q: %v (%d bytes)", v.html, err, len(html))
	}
}
