package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/minipay/minipay/internal/testdb"
)

// TestDevEndToEnd runs "minipay dev" and buys every demo item the way the
// host page does, over HTTP and without a browser (the browser test in
// sdk/js/e2e clicks through the same flow): the mini-app's backend creates
// the session, the host page's backend confirms it for a demo user, and the
// mini-app's backend receives and verifies the webhook; then the monthly
// membership is signed and canceled the same way. Kai's nearly empty
// wallet is refused and stays untouched.
func TestDevEndToEnd(t *testing.T) {
	db := testdb.New(t)
	cmd := exec.Command(binary, "dev", "--app-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+db.URL, "MINIPAY_ADDR=127.0.0.1:0", "MINIPAY_SECRET=dev-e2e-secret")
	p := &proc{t: t, cmd: cmd, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(p.stop)
	field := func(name string) string {
		m := regexp.MustCompile(`(?m)^\s*` + name + `:\s+(\S+)`).FindStringSubmatch(p.stdout.String())
		if m == nil {
			return ""
		}
		return m[1]
	}
	for deadline := time.Now().Add(60 * time.Second); field("demo users") == ""; {
		select {
		case err := <-p.done:
			t.Fatalf("dev exited: %v\n%s\n%s", err, p.stdout.String(), p.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("dev never said it was running:\n%s\n%s", p.stdout.String(), p.stderr.String())
		}
	}
	page, app := field("host page"), strings.TrimSuffix(field("mini-app"), "/")
	host := strings.TrimSuffix(page, "/demo/")

	post := func(url string, body any) (int, map[string]any) {
		t.Helper()
		b, _ := json.Marshal(body)
		resp, err := http.Post(url, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	get := func(url string, out any) int {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil {
			_ = json.NewDecoder(resp.Body).Decode(out)
		}
		return resp.StatusCode
	}
	if status := get(page, nil); status != http.StatusOK {
		t.Fatalf("host page: %d", status)
	}
	for _, item := range []string{"tea", "gems", "tip"} {
		status, sess := post(app+"/api/checkout", map[string]string{"item": item})
		if status != http.StatusOK || sess["session_id"] == nil {
			t.Fatalf("%s: mini-app backend answered %d %v", item, status, sess)
		}
		id := sess["session_id"].(string)
		confirm := func(user string) (int, map[string]any) {
			return post(host+"/demo/api/sessions/"+id+"/confirm", map[string]any{"user_id": user, "client_secret": sess["client_secret"]})
		}
		if status, out := confirm("usr_demo_kai"); status != http.StatusPaymentRequired {
			t.Fatalf("%s: Kai's 1.00 paid it: %d %v", item, status, out)
		}
		if status, out := confirm("usr_demo_lin"); status != http.StatusOK || out["status"] != "complete" {
			t.Fatalf("%s: Lin's confirm: %d %v", item, status, out)
		}
		var got struct {
			Data []struct{ Type, Object string } `json:"data"`
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			get(app+"/api/webhooks", &got)
			delivered := false
			for _, r := range got.Data {
				delivered = delivered || (r.Type == "checkout.session.completed" && r.Object == id)
			}
			if delivered {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no checkout.session.completed webhook for %s reached the mini-app's backend: %+v", item, id, got.Data)
			}
		}
	}

	// The membership: a subscription from the mini-app's backend, read and
	// signed by the host page's backend, then canceled by the user.
	status, offer := post(app+"/api/subscribe", map[string]string{})
	if status != http.StatusOK || offer["subscription_id"] == nil {
		t.Fatalf("subscribe: mini-app backend answered %d %v", status, offer)
	}
	sub := offer["subscription_id"].(string)
	var sheet map[string]any
	if status := get(host+"/demo/api/subscriptions/"+sub, &sheet); status != http.StatusOK || sheet["app_name"] != "Tea & Gems" || sheet["client_secret"] != nil {
		t.Fatalf("agreement sheet: %d %v", status, sheet)
	}
	sign := func(user string) (int, map[string]any) {
		return post(host+"/demo/api/subscriptions/"+sub+"/sign", map[string]any{"user_id": user, "client_secret": offer["client_secret"]})
	}
	if status, out := sign("usr_demo_kai"); status != http.StatusPaymentRequired {
		t.Fatalf("Kai's 1.00 paid a 30.00 month: %d %v", status, out)
	}
	if status, out := sign("usr_demo_lin"); status != http.StatusOK || out["status"] != "active" {
		t.Fatalf("Lin's signing: %d %v", status, out)
	}
	var mine struct{ Data []map[string]any }
	if get(host+"/demo/api/users/usr_demo_lin/subscriptions", &mine); len(mine.Data) != 1 || mine.Data[0]["id"] != sub {
		t.Fatalf("Lin's memberships: %v", mine)
	}
	cancel := func(user string) (int, map[string]any) {
		return post(host+"/demo/api/subscriptions/"+sub+"/cancel", map[string]any{"user_id": user})
	}
	if status, out := cancel("usr_demo_kai"); status < 400 || status >= 500 {
		t.Fatalf("Kai canceled Lin's membership: %d %v", status, out)
	}
	if status, out := cancel("usr_demo_lin"); status != http.StatusOK || out["cancel_at_period_end"] != true || out["status"] != "active" {
		t.Fatalf("Lin's cancel: %d %v", status, out)
	}

	for user, want := range map[string]string{"usr_demo_kai": `"available":"1.00"`, "usr_demo_lin": `"available":"121.00"`} {
		var wallet map[string]any
		if get(host+"/demo/api/wallets/"+user, &wallet); !strings.Contains(mustJSON(wallet), want) {
			t.Fatalf("%s's wallet: %s, want %s (200.00 less 38.00, 6.00, 5.00 and a month of 30.00 for Lin; untouched for Kai)", user, mustJSON(wallet), want)
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
