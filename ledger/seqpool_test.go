package ledger

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/minipay/minipay/internal/testdb"
)

// TestSeqPoolNeverGivesANumberTwice takes numbers from one pool on several
// connections at once, in takes that often overrun what the pool holds, and
// checks that no number comes out twice.
func TestSeqPoolNeverGivesANumberTwice(t *testing.T) {
	db := testdb.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var (
		pool seqPool
		mu   sync.Mutex
		seen = map[int64]bool{}
		wg   sync.WaitGroup
	)
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := db.Pool.Acquire(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Release()
			for i := range 60 {
				n := 1 + (g*7+i*13)%20
				seqs, err := pool.take(ctx, conn.Conn(), n)
				if err != nil {
					t.Error(err)
					return
				}
				if len(seqs) != n {
					t.Errorf("asked for %d numbers, got %d", n, len(seqs))
				}
				mu.Lock()
				for _, s := range seqs {
					if seen[s] {
						t.Errorf("number %d given twice", s)
					}
					seen[s] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}
