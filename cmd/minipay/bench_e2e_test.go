package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/minipay/minipay/internal/testdb"
)

// benchResult is the part of a benchmark's JSON line the smoke test reads.
type benchResult struct {
	Throughput    float64  `json:"throughput"`
	P99           float64  `json:"p99_ms"`
	Baseline      *float64 `json:"baseline_tps"`
	TrialBalanced bool     `json:"trial_balanced"`
	OfferedRate   float64  `json:"offered_rate"`
	MaxRate       *float64 `json:"max_rate"`
	P99AtMax      *float64 `json:"p99_ms_at_max"`
	ClosedLoopTPS float64  `json:"closed_loop_tps"`
	CeilingTPS    float64  `json:"ceiling_tps"`
	CeilingRatio  *float64 `json:"ceiling_ratio"`
	Plot          string   `json:"plot"`
	CoresAtMax    *float64 `json:"cores_busy_at_max"`
	// WAL at the max rate, by unit (transfer, checkout).
	WALPerTransferAtMax *float64 `json:"wal_bytes_per_transfer_at_max"`
	WALPerCheckoutAtMax *float64 `json:"wal_bytes_per_checkout_at_max"`
	WALSyncsAtMax       *float64 `json:"wal_syncs_per_s_at_max"`
	UnreadPct           *float64 `json:"group_attempts_unread_pct"`
	HostWake            *float64 `json:"host_wake_round_trip_us"`
	Connection          string   `json:"database_connection"`
	Points              []struct {
		Rate float64 `json:"rate"`
		P99  float64 `json:"p99_ms"`
		Pass bool    `json:"pass"`
	} `json:"points"`
}

// benchJSON runs "minipay bench" with args and returns its JSON line.
func benchJSON(t *testing.T, args ...string) benchResult {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"bench"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bench %v: %v\n%s", args, err, stderr.String())
	}
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	var res benchResult
	if err := json.Unmarshal(lines[len(lines)-1], &res); err != nil {
		t.Fatalf("last line is not the JSON result: %v\n%s", err, out)
	}
	if dup := duplicateKey(lines[len(lines)-1]); dup != "" {
		t.Fatalf("key %q twice in the JSON result (a decoder keeps one of them): %s", dup, out)
	}
	// A search on a busy machine may find no rate within the limit: its
	// throughput is then 0, and the closed loop's figure is checked below.
	if !res.TrialBalanced || res.MaxRate == nil && (res.Throughput <= 0 || res.P99 <= 0) {
		t.Fatalf("result %+v from %s", res, out)
	}
	if res.Baseline != nil {
		t.Fatalf("baseline_tps %v without a yardstick run", *res.Baseline)
	}
	return res
}

// duplicateKey returns a key that the top-level JSON object line holds
// twice, or "".
func duplicateKey(line []byte) string {
	dec := json.NewDecoder(bytes.NewReader(line))
	if _, err := dec.Token(); err != nil { // {
		return ""
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		key, _ := tok.(string)
		if seen[key] {
			return key
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return ""
		}
	}
	return ""
}

// TestBenchSmoke runs the ledger and checkout benchmarks of the real binary
// briefly, without the pgbench yardstick, closed-loop, open-loop at a fixed
// rate and searching for the highest rate: the load generators, the server
// the checkout benchmark starts, the search, the ceiling, the plot and the
// JSON line keep working, and the ledger balances after the load.
func TestBenchSmoke(t *testing.T) {
	db := testdb.NewEmpty(t) // the benchmarks create (and drop) their own databases on its server
	for _, kind := range []string{"ledger", "checkout"} {
		t.Run(kind, func(t *testing.T) {
			common := []string{kind, "--duration", "1s", "--clients", "4", "--no-baseline", "--json", "--database-url", db.URL}
			benchJSON(t, common...)

			res := benchJSON(t, append(common, "--rate", "100", "--senders", "8")...)
			if res.OfferedRate != 100 || res.Throughput > 150 {
				t.Fatalf("at 100/s: %+v", res)
			}
			if kind == "ledger" && (res.UnreadPct == nil || *res.UnreadPct < 0 || *res.UnreadPct > 100) {
				t.Fatalf("at 100/s: no share of groups that read nothing in %+v", res)
			}

			plot := filepath.Join(t.TempDir(), "p99.svg")
			res = benchJSON(t, append(common, "--find-max", "--steps", "3", "--senders", "16", "--plot", plot)...)
			if res.MaxRate == nil || res.P99AtMax == nil || len(res.Points) == 0 || len(res.Points) > 3 || res.ClosedLoopTPS <= 0 {
				t.Fatalf("find-max: %+v", res)
			}
			if *res.MaxRate > 0 && *res.P99AtMax > map[string]float64{"ledger": 50, "checkout": 100}[kind] {
				t.Fatalf("find-max: max rate %v with p99 %v over the limit", *res.MaxRate, *res.P99AtMax)
			}
			if *res.MaxRate > 0 && (res.CoresAtMax == nil || *res.CoresAtMax <= 0) {
				t.Fatalf("find-max: no CPU measured at the max rate in %+v", res)
			}
			if runtime.NumCPU() > 1 && (res.HostWake == nil || *res.HostWake <= 0) {
				t.Fatalf("find-max: no wake-up round trip of the host in %+v", res)
			}
			if res.Connection != "tcp" && res.Connection != "unix socket" {
				t.Fatalf("find-max: database_connection %q in %+v", res.Connection, res)
			}
			wal := map[string]*float64{"ledger": res.WALPerTransferAtMax, "checkout": res.WALPerCheckoutAtMax}[kind]
			if *res.MaxRate > 0 && (wal == nil || *wal <= 0 || res.WALSyncsAtMax == nil || *res.WALSyncsAtMax <= 0) {
				t.Fatalf("find-max: no WAL measured at the max rate in %+v", res)
			}
			if kind == "ledger" && (res.CeilingTPS <= 0 || res.CeilingRatio == nil) {
				t.Fatalf("find-max: no ceiling in %+v", res)
			}
			svg, err := os.ReadFile(plot)
			if err != nil || res.Plot != plot {
				t.Fatalf("plot %q: %v", res.Plot, err)
			}
			if !strings.HasPrefix(string(svg), "<svg") || strings.Count(string(svg), "<circle") != len(res.Points) {
				t.Fatalf("plot is not an SVG with one circle per point:\n%s", svg)
			}
		})
	}
}
