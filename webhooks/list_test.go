package webhooks

import (
	"context"
	"slices"
	"testing"
)

// TestListEndpointsNewestFirst lists endpoints whose ids sort against their
// creation order, as ids derived from idempotency keys may: the list is
// newest first all the same, and paging yields each endpoint once.
func TestListEndpointsNewestFirst(t *testing.T) {
	f := newFixture(t, quick())
	ctx := context.Background()
	created := []string{"we_z", "we_m", "we_x", "we_a", "we_q"}
	for _, id := range created {
		if _, err := f.svc.CreateEndpoint(ctx, f.app, EndpointParams{ID: id, URL: "http://127.0.0.1:9/hooks", EnabledEvents: []string{"*"}}); err != nil {
			t.Fatal(err)
		}
	}
	var listed []string
	after := ""
	for range 5 {
		page, more, err := f.svc.ListEndpoints(ctx, f.app, 2, after)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			listed = append(listed, e.ID)
			after = e.ID
		}
		if !more {
			break
		}
	}
	slices.Reverse(created)
	if !slices.Equal(listed, created) {
		t.Fatalf("listed %v, want newest first %v", listed, created)
	}
}
