package minipay

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/minipay/minipay/sdk/go/webhook"
)

// ParseWebhook verifies a delivery with the endpoint's secret (whsec_…)
// per the Standard Webhooks specification (webhook.Verify, with tolerance
// 0 meaning webhook.DefaultTolerance) and decodes the event. Pass the body
// exactly as received. Deliveries are at least once: use the event id to
// drop repeats.
func ParseWebhook(secret string, header http.Header, body []byte, tolerance time.Duration) (*Event, error) {
	if err := webhook.Verify(secret, header, body, tolerance); err != nil {
		return nil, fmt.Errorf("minipay: webhook: %w", err)
	}
	var e Event
	if err := json.Unmarshal(body, &e); err != nil {
		return nil, fmt.Errorf("minipay: webhook: decode event: %w", err)
	}
	return &e, nil
}
