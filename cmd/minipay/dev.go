package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/minipay/minipay/demo"
	"github.com/minipay/minipay/internal/pgdb"
	"github.com/minipay/minipay/ledger"
	sdk "github.com/minipay/minipay/sdk/go/minipay"
)

// devDatabaseURL keeps the demo's data out of the database "serve" uses.
const devDatabaseURL = "postgres://postgres@127.0.0.1:5432/minipay_dev?sslmode=disable"

// The demo's signed-in users and what their wallets hold at each start.
var devUsers = []struct {
	demo.User
	wallet string // topped up to this at start
}{
	{demo.User{ID: "usr_demo_lin", Name: "Lin"}, "200.00"},
	{demo.User{ID: "usr_demo_kai", Name: "Kai (almost empty wallet)"}, "1.00"},
}

// dev runs everything a newcomer needs on one machine: the API with its
// workers, a demo developer and app, demo users with funded wallets, the
// mini-app's backend (which receives webhooks), and the host page at /demo/.
func dev(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := configFlags(fs, getenv)
	appAddr := fs.String("app-addr", envOr(getenv, "MINIPAY_DEV_APP_ADDR", "127.0.0.1:8081"), "listen address of the demo mini-app and its backend (MINIPAY_DEV_APP_ADDR)")
	verbose := fs.Bool("v", false, "log every request")
	if getenv("DATABASE_URL") == "" {
		_ = fs.Set("database-url", devDatabaseURL)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The demo backend listens on loopback.
	cfg.WebhookAllowPrivate = true
	// Keys are chosen here, not generated inside assemble, because the
	// demo needs them on every start, not only on the first; keys from an
	// earlier start retire after the usual 24 hours.
	if cfg.AdminKey == "" {
		cfg.AdminKey = "admin_dev_" + randomHex(16)
	}
	if cfg.HostKey == "" {
		cfg.HostKey = "host_dev_" + randomHex(16)
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	pool, _, err := pgdb.Setup(ctx, cfg.DatabaseURL, int32(cfg.DBConns))
	if err != nil {
		return err
	}
	defer pool.Close()
	app, err := assemble(ctx, cfg, pool, log, stdout)
	if err != nil {
		return err
	}
	defer app.close()

	apiLn, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	appLn, err := net.Listen("tcp", *appAddr)
	if err != nil {
		apiLn.Close()
		return fmt.Errorf("listen on %s: %w", *appAddr, err)
	}
	apiURL := "http://" + loopback(apiLn.Addr())
	appURL := "http://" + loopback(appLn.Addr())
	_, appPort, _ := net.SplitHostPort(appLn.Addr().String())

	backend := &demo.Backend{}
	host := &demo.Host{APIURL: apiURL, HostKey: cfg.HostKey, AppPort: appPort}
	for _, u := range devUsers {
		host.Users = append(host.Users, u.User)
	}
	// The production router stays free of demo routes: the demo wraps it.
	mux := http.NewServeMux()
	mux.Handle("/demo/", host.Handler())
	mux.Handle("/", app.handler())
	servers := []*http.Server{
		{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		{Handler: backend.Handler(), ReadHeaderTimeout: 10 * time.Second},
	}
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	var workers sync.WaitGroup
	app.startWorkers(workCtx, &workers)
	serveErr := make(chan error, 2)
	go func() { serveErr <- servers[0].Serve(apiLn) }()
	go func() { serveErr <- servers[1].Serve(appLn) }()
	shutdown := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, s := range servers {
			_ = s.Shutdown(sctx)
		}
		stopWork()
		workers.Wait()
	}

	setup, err := setUpDemo(ctx, apiURL, appURL, cfg.AdminKey, cfg.HostKey, backend)
	if err != nil {
		shutdown()
		return fmt.Errorf("set up the demo: %w", err)
	}
	host.SetApp(setup.appID)
	pageURL := "http://" + browserAddr(apiLn.Addr()) + "/demo/"
	fmt.Fprintf(stdout, `minipay dev is running. Press Ctrl-C to stop.

  host page:    %s
  mini-app:     %s  (its backend: POST /api/checkout, POST /webhooks)
  API:          %s  (spec: %s/openapi.yaml)
  database:     %s

  admin key:    %s
  host key:     %s
  developer:    %s
  app:          %s
  secret key:   %s
  webhook:      %s -> %s/webhooks
  webhook secret: %s
  demo users:   %s
`, pageURL, appURL, apiURL, apiURL, redactURL(cfg.DatabaseURL), cfg.AdminKey, cfg.HostKey, setup.developerID, setup.appID,
		setup.secretKey, setup.endpointID, appURL, setup.webhookSecret, strings.Join(setup.wallets, ", "))

	select {
	case err = <-serveErr:
		err = fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		err = nil
	}
	shutdown()
	return err
}

type demoSetup struct {
	developerID, appID, secretKey string
	endpointID, webhookSecret     string
	wallets                       []string
}

// setUpDemo creates the demo's developer, app and webhook endpoint and
// funds the demo users, through the API as an operator, a host and a
// developer would.
func setUpDemo(ctx context.Context, apiURL, appURL, adminKey, hostKey string, backend *demo.Backend) (demoSetup, error) {
	var s demoSetup
	var dev struct{ ID string }
	if err := devCall(ctx, apiURL, adminKey, "POST", "/v1/developers", map[string]any{"name": "Demo developer"}, &dev); err != nil {
		return s, err
	}
	var app struct {
		ID        string `json:"id"`
		SecretKey string `json:"secret_key"`
	}
	if err := devCall(ctx, apiURL, adminKey, "POST", "/v1/apps", map[string]any{"developer": dev.ID, "name": "Tea & Gems",
		"options": []string{"goods", "virtual_goods", "tip"}, "currencies": []string{"CNY"}}, &app); err != nil {
		return s, err
	}
	s.developerID, s.appID, s.secretKey = dev.ID, app.ID, app.SecretKey
	for _, u := range devUsers {
		bal, err := topUpTo(ctx, apiURL, hostKey, u.ID, u.wallet, "CNY")
		if err != nil {
			return s, err
		}
		s.wallets = append(s.wallets, fmt.Sprintf("%s (%s CNY)", u.ID, bal))
	}
	backend.Client = sdk.New(app.SecretKey, sdk.WithBaseURL(apiURL))
	ep, err := backend.Client.CreateWebhookEndpoint(ctx, sdk.WebhookEndpointParams{URL: appURL + "/webhooks",
		Description: "minipay dev: the demo mini-app's backend"})
	if err != nil {
		return s, fmt.Errorf("register the webhook endpoint: %w", err)
	}
	backend.SetWebhookSecret(ep.Secret)
	s.endpointID, s.webhookSecret = ep.ID, ep.Secret
	return s, nil
}

// topUpTo funds a wallet up to target (never down) and returns what it holds.
func topUpTo(ctx context.Context, apiURL, hostKey, user, target, currency string) (string, error) {
	want, err := ledger.ParseAmount(currency, target)
	if err != nil {
		return "", err
	}
	var w struct {
		Balances []struct{ Currency, Available string }
	}
	var have int64
	err = devCall(ctx, apiURL, hostKey, "GET", "/v1/wallets/"+user, nil, &w)
	if err != nil && sdk.ErrorCode(err) != "wallet_not_found" {
		return "", err
	}
	for _, b := range w.Balances {
		if b.Currency == currency {
			if have, err = ledger.ParseAmount(currency, b.Available); err != nil {
				return "", err
			}
		}
	}
	if have >= want {
		return ledger.FormatAmount(currency, have), nil
	}
	amount := ledger.FormatAmount(currency, want-have)
	if err := devCall(ctx, apiURL, hostKey, "POST", "/v1/wallets/"+user+"/topups", map[string]string{"amount": amount, "currency": currency}, nil); err != nil {
		return "", err
	}
	return target, nil
}

// devCall is one API call with an operator's key; failures come back as
// *sdk.Error.
func devCall(ctx context.Context, apiURL, key, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, apiURL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if res.StatusCode >= 300 {
		var e struct{ Error sdk.Error }
		_ = json.Unmarshal(raw, &e)
		e.Error.Status = res.StatusCode
		return fmt.Errorf("%s %s: %w", method, path, &e.Error)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// loopback is addr as this process dials it: an unspecified host ("[::]")
// becomes 127.0.0.1.
func loopback(addr net.Addr) string {
	host, port, _ := net.SplitHostPort(addr.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// browserAddr is addr as a person types it: localhost for any loopback or
// unspecified address.
func browserAddr(addr net.Addr) string {
	host, port, _ := net.SplitHostPort(addr.String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() || ip.IsLoopback() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// redactURL drops a password from a database URL before printing it.
func redactURL(u string) string {
	if i, j := strings.Index(u, "://"), strings.LastIndex(u, "@"); i >= 0 && j > i {
		if k := strings.Index(u[i+3:j], ":"); k >= 0 {
			return u[:i+3+k] + ":***" + u[j:]
		}
	}
	return u
}
