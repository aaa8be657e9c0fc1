package bench

import (
	"context"
	"testing"
	"time"

	"github.com/minipay/minipay/internal/cpustat"
)

// BenchmarkOpenLoop measures what the open loop itself costs the process
// it runs in: 20,000 operations a second, 4,096 senders at most, each
// operation using about 10 KB of stack, more than a new goroutine starts
// with (as Post does), and 4 KB of heap, and answered 5 ms later. It
// reports the process's CPU per operation; the benchmark's own overhead is
// everything but the operations' own work.
func BenchmarkOpenLoop(b *testing.B) {
	const rate = 20000
	d := time.Duration(float64(b.N) / rate * float64(time.Second))
	cpu0, err := cpustat.Self()
	if err != nil {
		b.Skip(err)
	}
	b.ResetTimer()
	run, err := openLoop(context.Background(), rate, d, 4096, 0, func(ctx context.Context, s int, i int64) error {
		deep(40)
		time.Sleep(5 * time.Millisecond)
		return nil
	})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	cpu1, _ := cpustat.Self()
	b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/1000/float64(run.done), "cpu-µs/op")
}

// sink keeps deep's garbage from being optimized away.
var sink []byte

// deep uses about n × 256 bytes of stack and allocates 4 KB.
func deep(n int) {
	var frame [224]byte
	frame[n] = byte(n)
	if n > 0 {
		deep(n - 1)
		return
	}
	sink = make([]byte, 4096)
	sink[0] = frame[0]
}
