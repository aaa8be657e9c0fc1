package minipay_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// quickstartBlocks returns the shell blocks of docs/quickstart.md marked
// <!-- run: NAME -->, by name.
func quickstartBlocks(t *testing.T) map[string]string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "quickstart.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^<!-- run: (\w+) -->\n((?:    .*\n)+)`).FindAllStringSubmatch(string(doc), -1) {
		var lines []string
		for _, l := range strings.Split(strings.TrimRight(m[2], "\n"), "\n") {
			lines = append(lines, strings.TrimPrefix(l, "    "))
		}
		blocks[m[1]] = strings.Join(lines, "\n")
	}
	for _, want := range []string{"dev", "listen", "secret", "backend", "pay"} {
		if blocks[want] == "" {
			t.Fatalf("docs/quickstart.md has no <!-- run: %s --> block", want)
		}
	}
	return blocks
}

// shell is one terminal of the quickstart: bash running a block, in its
// own process group so that what "go run" starts stops with it.
type shell struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdout *lockedBuffer
	stderr *lockedBuffer
	done   chan struct{}
}

func terminal(t *testing.T, script string, env ...string) *shell {
	t.Helper()
	sh := &shell{t: t, cmd: exec.Command("bash", "-ec", script), stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan struct{})}
	sh.cmd.Dir = repoRoot
	sh.cmd.Env = append(os.Environ(), env...)
	sh.cmd.Stdout, sh.cmd.Stderr = sh.stdout, sh.stderr
	sh.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := sh.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = sh.cmd.Wait(); close(sh.done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-sh.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-sh.done:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-sh.cmd.Process.Pid, syscall.SIGKILL)
			<-sh.done
		}
	})
	return sh
}

// wait waits for re in the terminal's output and returns its match.
func (sh *shell) wait(re string) []string {
	sh.t.Helper()
	rx := regexp.MustCompile(re)
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m := rx.FindStringSubmatch(sh.stdout.String()); m != nil {
			return m
		}
		select {
		case <-sh.done:
			if m := rx.FindStringSubmatch(sh.stdout.String()); m != nil {
				return m
			}
			sh.t.Fatalf("%q ended without printing %q:\n%s\n%s", sh.cmd.Args[2], re, sh.stdout.String(), sh.stderr.String())
		default:
		}
	}
	sh.t.Fatalf("no %q from %q:\n%s\n%s", re, sh.cmd.Args[2], sh.stdout.String(), sh.stderr.String())
	return nil
}

func freeTCPPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// TestQuickstartFollowedLiterally runs docs/quickstart.md's steps as a
// newcomer would, each in its own terminal: minipay dev, minipay listen,
// the Go backend with listen's secret, and the host's payment with curl.
// It passes when the backend prints the webhook that listen forwarded.
// The deviations are the ones a shared test machine needs: the built
// binary for "go run ./cmd/minipay", a fresh database, and free ports for
// 8080, 8081 and 4242.
func TestQuickstartFollowedLiterally(t *testing.T) {
	blocks := quickstartBlocks(t)
	port := freeTCPPort(t)
	fill := func(block string) string {
		block = strings.ReplaceAll(block, "go run ./cmd/minipay", minipayBinary(t))
		return strings.ReplaceAll(block, "4242", port)
	}
	dev := terminal(t, fill(blocks["dev"]), "DATABASE_URL="+freshDatabase(t), "MINIPAY_ADDR=127.0.0.1:0", "MINIPAY_DEV_APP_ADDR=127.0.0.1:0")
	export := dev.wait(`(?m)^\s*(export MINIPAY_URL=\S+ MINIPAY_SECRET_KEY=\S+ MINIPAY_HOST_KEY=\S+)$`)[1]

	listen := terminal(t, export+"\n"+fill(blocks["listen"]))
	listen.wait(`secret is whsec_`)

	backend := terminal(t, export+"\n"+fill(blocks["secret"])+"\n"+fill(blocks["backend"]), "PORT="+port)
	m := backend.wait(`(?m)^session (cs_\S+), client secret (\S+)$`)

	pay := regexp.MustCompile(`SESSION=cs_… CLIENT_SECRET=…`).ReplaceAllLiteralString(fill(blocks["pay"]),
		fmt.Sprintf("SESSION=%s CLIENT_SECRET=%s", m[1], m[2]))
	if pay == fill(blocks["pay"]) {
		t.Fatal(`the pay block no longer has "SESSION=cs_… CLIENT_SECRET=…" for the reader to fill in`)
	}
	payer := terminal(t, export+"\n"+pay)
	payer.wait(`"status":"complete"`)

	backend.wait(`(?m)^received checkout\.session\.completed for ` + regexp.QuoteMeta(m[1]) + `$`)
	listen.wait(`(?m)^\S+ \S+  checkout\.session\.completed +evt_\S+  -> 204 \(\d+ ms\)$`)
}

// TestQuickstartDocMatchesSnippets: every code block of docs/quickstart.md
// marked <!-- file: PATH --> is that file, byte for byte, so the page shows
// the code the tests run.
func TestQuickstartDocMatchesSnippets(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "quickstart.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)<!-- file: (\\S+) -->\n```[a-z]*\n(.*?)```\n").FindAllStringSubmatch(string(doc), -1)
	seen := map[string]bool{}
	for _, b := range blocks {
		want, err := os.ReadFile(filepath.Join(repoRoot, b[1]))
		if err != nil {
			t.Fatal(err)
		}
		if b[2] != string(want) {
			t.Errorf("docs/quickstart.md's block for %s differs from the file; copy the file into the page", b[1])
		}
		seen[b[1]] = true
	}
	for _, f := range []string{"sdk/js/examples/quickstart.ts", "sdk/go/minipay/examples/quickstart/main.go"} {
		if !seen[f] {
			t.Errorf("docs/quickstart.md does not show %s", f)
		}
	}
}
