package minipay_test

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minipay/minipay/sdk/go/minipay"
)

// TestQuickstartGo runs the Go program of docs/quickstart.md against a real
// server: it creates a session, the host pays it, and the program prints
// the webhook it received and verified.
func TestQuickstartGo(t *testing.T) {
	s := newServer(t, 0)
	bin := filepath.Join(t.TempDir(), "quickstart")
	if out, err := exec.Command("go", "build", "-o", bin, "./examples/quickstart").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ep, err := s.client.CreateWebhookEndpoint(context.Background(), minipay.WebhookEndpointParams{
		URL: "http://127.0.0.1:" + itoa(port) + "/webhooks", EnabledEvents: []string{"checkout.session.completed"}})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "MINIPAY_URL="+s.url, "MINIPAY_SECRET_KEY="+s.sk, "MINIPAY_WEBHOOK_SECRET="+ep.Secret, "PORT="+itoa(port))
	lines := runLines(t, cmd)

	created := regexp.MustCompile(`^session (cs_\S+), client secret (\S+)$`)
	var m []string
	waitLine(t, lines, func(l string) bool { m = created.FindStringSubmatch(l); return m != nil })
	s.raw("POST", "/v1/wallets/usr_q/topups", hostKey, `{"amount": "6.00", "currency": "CNY"}`, 200)
	s.raw("POST", "/v1/checkout/sessions/"+m[1]+"/confirm", hostKey, `{"user_id": "usr_q", "client_secret": "`+m[2]+`"}`, 200)
	waitLine(t, lines, func(l string) bool { return l == "received checkout.session.completed for "+m[1] })
}

func itoa(n int) string { return strconv.Itoa(n) }

// runLines starts cmd and sends its stdout lines; the process is killed
// when the test ends.
func runLines(t *testing.T, cmd *exec.Cmd) <-chan string {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("stderr of %s:\n%s", cmd.Path, stderr.String())
		}
	})
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return lines
}

func waitLine(t *testing.T, lines <-chan string, ok func(string) bool) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case l, open := <-lines:
			if !open {
				t.Fatal("the program exited")
			}
			if ok(l) {
				return
			}
		case <-deadline:
			t.Fatal("gave up waiting for the program's output")
		}
	}
}

// TestQuickstartDocMatchesSnippets: every code block of docs/quickstart.md
// marked <!-- file: PATH --> is that file, byte for byte, so the doc shows
// the code the tests run.
func TestQuickstartDocMatchesSnippets(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	doc, err := os.ReadFile(filepath.Join(root, "docs", "quickstart.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)<!-- file: (\\S+) -->\n```[a-z]*\n(.*?)```\n").FindAllStringSubmatch(string(doc), -1)
	seen := map[string]bool{}
	for _, b := range blocks {
		want, err := os.ReadFile(filepath.Join(root, b[1]))
		if err != nil {
			t.Fatal(err)
		}
		if b[2] != string(want) {
			t.Errorf("docs/quickstart.md's block for %s differs from the file; copy the file into the doc", b[1])
		}
		seen[b[1]] = true
	}
	for _, f := range []string{"sdk/js/examples/quickstart.ts", "sdk/go/minipay/examples/quickstart/main.go"} {
		if !seen[f] {
			t.Errorf("docs/quickstart.md does not show %s", f)
		}
	}
}
