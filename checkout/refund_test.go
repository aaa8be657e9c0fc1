package checkout

import "testing"

func TestFeeShareAddsUpToTheFee(t *testing.T) {
	for _, total := range []int64{1, 3, 7, 100, 999, 2500} {
		for _, fee := range []int64{0, 1, total / 3, total} {
			sess := Session{AmountTotal: total, Fee: &fee}
			var refunded int64
			for sess.AmountRefunded < total {
				part := min(total/3+1, total-sess.AmountRefunded)
				share := feeShare(sess, part)
				if share < 0 || share > part {
					t.Fatalf("total %d fee %d: share %d of refund %d", total, fee, share, part)
				}
				sess.AmountRefunded += part
				sess.FeeRefunded += share
				refunded += share
			}
			if refunded != fee {
				t.Fatalf("total %d fee %d: refunds returned %d of the fee", total, fee, refunded)
			}
		}
	}
}
