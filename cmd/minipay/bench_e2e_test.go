package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"testing"

	"github.com/minipay/minipay/internal/testdb"
)

// TestBenchSmoke runs the ledger and checkout benchmarks of the real binary
// for a second each, without the pgbench yardstick: the load generators,
// the server the checkout benchmark starts and the JSON line keep working,
// and the ledger balances after the load.
func TestBenchSmoke(t *testing.T) {
	db := testdb.NewEmpty(t) // the benchmarks create (and drop) their own databases on its server
	for _, kind := range []string{"ledger", "checkout"} {
		t.Run(kind, func(t *testing.T) {
			cmd := exec.Command(binary, "bench", kind, "--duration", "1s", "--clients", "4", "--no-baseline", "--json",
				"--database-url", db.URL)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("bench %s: %v\n%s", kind, err, stderr.String())
			}
			lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
			var res struct {
				Throughput    float64  `json:"throughput"`
				P99           float64  `json:"p99_ms"`
				Baseline      *float64 `json:"baseline_tps"`
				TrialBalanced bool     `json:"trial_balanced"`
			}
			if err := json.Unmarshal(lines[len(lines)-1], &res); err != nil {
				t.Fatalf("last line is not the JSON result: %v\n%s", err, out)
			}
			if res.Throughput <= 0 || res.P99 <= 0 || !res.TrialBalanced {
				t.Fatalf("result %+v from %s", res, out)
			}
			if res.Baseline != nil {
				t.Fatalf("baseline_tps %v without a yardstick run", *res.Baseline)
			}
		})
	}
}
