package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestRefusedAddresses(t *testing.T) {
	for _, a := range []string{
		"127.0.0.1", "127.8.9.10", "10.0.0.1", "10.255.255.255", "172.16.0.1", "192.168.1.1",
		"169.254.169.254", "169.254.0.1", "100.64.0.1", "100.100.100.200", "0.0.0.0", "0.1.2.3",
		"224.0.0.1", "239.255.255.250", "255.255.255.255", "198.18.0.1", "168.63.129.16",
		"::1", "::", "fc00::1", "fd00:ec2::254", "fe80::1", "ff02::1", "fec0::1",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1",
		"::ffff:0:10.0.0.1", "64:ff9b::a00:1", "2002:a00:1::", "2002:7f00:1::",
		// RFC 8215's local-use NAT64 prefix translates into the operator's
		// own IPv4 network, wherever the IPv4 address sits in it.
		"64:ff9b:1::a00:1", "64:ff9b:1::808:808", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "64:ff9b:1:a00:1::",
	} {
		if refusedBecause(netip.MustParseAddr(a)) == "" {
			t.Errorf("%s is allowed", a)
		}
	}
	for _, a := range []string{"93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"} {
		if why := refusedBecause(netip.MustParseAddr(a)); why != "" {
			t.Errorf("%s refused: %s", a, why)
		}
	}
}

func TestURLCheckedAtCreation(t *testing.T) {
	o := quick()
	o.AllowPrivate = false
	f := newFixture(t, o)
	ctx := context.Background()
	for url, want := range map[string]error{
		"":                                ErrMissing,
		"http://hooks.example.com/":       ErrURLInsecure,
		"ftp://hooks.example.com/":        ErrURLInvalid,
		"/relative":                       ErrURLInvalid,
		"https://user:pw@hooks.example/":  ErrURLInvalid,
		"https://127.0.0.1/":              ErrURLNotAllowed,
		"https://10.1.2.3:8443/":          ErrURLNotAllowed,
		"https://169.254.169.254/latest/": ErrURLNotAllowed,
		"https://[::1]/":                  ErrURLNotAllowed,
		"https://[::ffff:127.0.0.1]/":     ErrURLNotAllowed,
		"https://[64:ff9b:1::a00:1]/":     ErrURLNotAllowed,
		"https://[64:ff9b:1::808:808]/":   ErrURLNotAllowed,
		"https://localhost/":              ErrURLNotAllowed,
		"https://api.localhost./":         ErrURLNotAllowed,
		"https://hooks.example.com/" + strings.Repeat("a", 2100): ErrURLInvalid,
	} {
		_, err := f.svc.CreateEndpoint(ctx, f.app, EndpointParams{URL: url, EnabledEvents: []string{"*"}})
		if !errors.Is(err, want) {
			t.Errorf("%q: got %v, want %v", url, err, want)
		}
	}
	if f.count(`SELECT count(*) FROM webhook_endpoints`) != 0 {
		t.Fatal("a refused endpoint was stored")
	}
	if _, err := f.svc.CreateEndpoint(ctx, f.app, EndpointParams{URL: "https://hooks.example.com/x", EnabledEvents: []string{"*"}}); err != nil {
		t.Fatal(err)
	}
	// With private addresses allowed (development), http and loopback are fine.
	dev := newFixture(t, quick())
	if _, err := dev.svc.CreateEndpoint(ctx, dev.app, EndpointParams{URL: "http://127.0.0.1:8080/", EnabledEvents: []string{"*"}}); err != nil {
		t.Fatal(err)
	}
}

// Names that resolve to internal addresses are refused when connecting:
// the check is on the resolved address, not the name.
func TestDialRefusesResolvedInternalAddresses(t *testing.T) {
	o := quick()
	o.AllowPrivate = false
	o.Schedule = []time.Duration{}
	f := newFixture(t, o)
	rc := newReceiver(t, ok) // listening on 127.0.0.1: must never be reached
	port := rc.Listener.Addr().(*net.TCPAddr).Port
	names := map[string]string{
		"loopback.example": "127.0.0.1", "private.example": "10.0.0.7", "metadata.example": "169.254.169.254",
		"six.example": "::1", "mapped.example": "::ffff:127.0.0.1",
	}
	f.svc.lookup = func(_ context.Context, host string) ([]netip.Addr, error) {
		if a, ok := names[host]; ok {
			return []netip.Addr{netip.MustParseAddr(a)}, nil
		}
		return nil, errors.New("no such host")
	}
	for name := range names {
		f.endpoint(fmt.Sprintf("https://%s:%d/hook", name, port))
	}
	f.emit(f.app, CheckoutSessionCompleted, 1)
	f.run()
	f.waitFor("every delivery to fail", func() bool {
		return f.count(`SELECT count(*) FROM webhook_deliveries WHERE status = 'failed'`) == len(names)
	})
	if n := f.count(`SELECT count(*) FROM webhook_attempts WHERE error LIKE '%address refused%' AND status_code IS NULL`); n != len(names) {
		t.Fatalf("%d of %d attempts refused at dial", n, len(names))
	}
	if rc.count() != 0 {
		t.Fatal("an internal address was reached")
	}
}
