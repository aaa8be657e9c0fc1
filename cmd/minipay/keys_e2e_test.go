package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/minipay/minipay/internal/testdb"
)

// TestKeysRevoke revokes the host key of a running server with the real
// binary: the last key of a kind needs --force, the server refuses the key
// within its cache time, and a replica still configured with it refuses to
// start instead of bringing it back.
func TestKeysRevoke(t *testing.T) {
	db := testdb.New(t)
	env := []string{"DATABASE_URL=" + db.URL, "MINIPAY_ADMIN_KEY=k-admin-revoke-0123456789", "MINIPAY_HOST_KEY=k-host-revoke-0123456789"}
	p := startServe(t, env...)
	const host = "k-host-revoke-0123456789"
	if status, _ := p.do("GET", "/v1/wallets/nobody", host, ""); status != 404 {
		t.Fatalf("host key before revocation: %d", status)
	}
	code, _, stderr := minipay(t, env, "keys", "revoke", "--key", host)
	if code == 0 || !strings.Contains(stderr, "--force") {
		t.Fatalf("revoking the last host key without --force: exit %d\n%s", code, stderr)
	}
	cmd := exec.Command(binary, "keys", "revoke", "--key", "-", "--force")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(host + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "revoked host key key_") || strings.Contains(string(out), host) {
		t.Fatalf("revoke: %v\n%s", err, out)
	}
	deadline := time.Now().Add(15 * time.Second) // authentications are cached for up to 10 s
	for {
		status, _ := p.do("GET", "/v1/wallets/nobody", host, "")
		if status == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the revoked host key still answers %d", status)
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.stop()

	code, _, stderr = minipay(t, append(env, "MINIPAY_ADDR=127.0.0.1:0"), "serve")
	if code == 0 || !strings.Contains(stderr, "MINIPAY_HOST_KEY") || !strings.Contains(stderr, "retired") {
		t.Fatalf("serve with the revoked key: exit %d\n%s", code, stderr)
	}
	var expired bool
	if err := db.Pool.QueryRow(t.Context(), `SELECT expires_at <= now() FROM api_keys WHERE kind = 'host'`).Scan(&expired); err != nil || !expired {
		t.Fatalf("the revoked key came back: expired %v, %v", expired, err)
	}
}
