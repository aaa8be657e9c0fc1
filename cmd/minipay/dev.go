package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/minipay/minipay/catalog"
	"github.com/minipay/minipay/demo"
	"github.com/minipay/minipay/internal/pgdb"
	"github.com/minipay/minipay/ledger"
)

// devDatabaseURL keeps the demo's data out of the database "serve" uses.
const devDatabaseURL = "postgres://postgres@127.0.0.1:5432/minipay_dev?sslmode=disable"

// devSchedule settles often, so a developer sees money mature and pay out
// in one sitting.
const devSchedule = "every 2m"

// devHolding is how long each option's money is held in dev's catalog:
// minutes instead of days.
var devHolding = map[string]time.Duration{"goods": 2 * time.Minute, "tip": time.Minute}

const devHoldingDefault = 4 * time.Minute

// The demo's signed-in users and what their wallets hold at each start.
var devUsers = []struct {
	demo.User
	wallet string // topped up to this at start
}{
	{demo.User{ID: "usr_demo_lin", Name: "Lin"}, "200.00"},
	{demo.User{ID: "usr_demo_kai", Name: "Kai (almost empty wallet)"}, "1.00"},
}

func devCommand(fs *flag.FlagSet, e *env) runFunc {
	cfg := newConfig(e.getenv)
	cfg.databaseFlags(fs, devDatabaseURL)
	cfg.serverFlags(fs)
	// dev's defaults, where the environment says nothing: a sandbox that
	// delivers webhooks to loopback and settles every few minutes.
	devDefault(fs, e.getenv, "sandbox", "MINIPAY_SANDBOX", "true")
	devDefault(fs, e.getenv, "webhook-allow-private", "MINIPAY_WEBHOOK_ALLOW_PRIVATE", "true")
	devDefault(fs, e.getenv, "settlement-schedule", "MINIPAY_SETTLEMENT_SCHEDULE", devSchedule)
	fs.Lookup("catalog").Usage = "monetization catalog file (MINIPAY_CATALOG); if unset, the built-in one with holding periods of minutes"
	appAddr := fs.String("app-addr", cfg.env("MINIPAY_DEV_APP_ADDR", "127.0.0.1:8081"), "listen address of the demo mini-app and its backend (MINIPAY_DEV_APP_ADDR)")
	reset := fs.Bool("reset", false, "start over: drop the dev database (only one whose name ends in _dev) and make a new developer, app, keys and endpoint")
	verbose := fs.Bool("v", false, "log every request, not only purchases and webhook deliveries")
	return noArgs("dev", func(ctx context.Context) error {
		d := &devServer{cfg: cfg, appAddr: *appAddr, reset: *reset, verbose: *verbose, stdout: e.stdout, stderr: e.stderr}
		return d.run(ctx)
	})
}

// devDefault changes a flag's default for dev, unless its variable is set.
func devDefault(fs *flag.FlagSet, getenv func(string) string, name, envName, value string) {
	if getenv(envName) != "" {
		return
	}
	f := fs.Lookup(name)
	_ = f.Value.Set(value)
	f.DefValue = value
}

// devServer is everything a newcomer needs on one machine: the API with
// its workers, a demo developer and app, demo users with funded wallets,
// the mini-app's backend (which receives webhooks), and the host page at
// /demo/.
type devServer struct {
	cfg            *config
	appAddr        string
	reset, verbose bool
	stdout, stderr io.Writer
}

func (d *devServer) run(ctx context.Context) error {
	cfg := d.cfg
	if err := cfg.check(); err != nil {
		return err
	}
	if d.reset {
		if err := resetDevDatabase(ctx, cfg.DatabaseURL); err != nil {
			return err
		}
	}
	log := slog.New(&devLog{out: d.stderr, verbose: d.verbose, next: slog.NewTextHandler(d.stderr, nil)})
	pool, _, err := pgdb.Setup(ctx, cfg.DatabaseURL, int32(cfg.DBConns))
	if err != nil {
		return err
	}
	defer pool.Close()
	id, known, err := demo.LoadIdentity(ctx, pool)
	if err != nil {
		return err
	}
	// Keys given in the environment win; else the ones of the first start.
	cfg.AdminKey = firstOf(cfg.AdminKey, id.AdminKey, "admin_dev_"+randomHex(16))
	cfg.HostKey = firstOf(cfg.HostKey, id.HostKey, "host_dev_"+randomHex(16))
	id.AdminKey, id.HostKey = cfg.AdminKey, cfg.HostKey
	catalogNote := "from " + cfg.Catalog
	if cfg.Catalog == "" {
		catalogNote = "built in, holding periods of minutes"
	}
	app, err := assemble(ctx, cfg, pool, log, d.stdout, devCatalog)
	if err != nil {
		return err
	}
	defer app.close()

	apiLn, err := listen(cfg.Addr, "addr", "MINIPAY_ADDR")
	if err != nil {
		return err
	}
	appLn, err := listen(d.appAddr, "app-addr", "MINIPAY_DEV_APP_ADDR")
	if err != nil {
		apiLn.Close()
		return err
	}
	apiURL := "http://" + loopback(apiLn.Addr())
	appURL := "http://" + loopback(appLn.Addr())
	_, appPort, _ := net.SplitHostPort(appLn.Addr().String())
	_, apiPort, _ := net.SplitHostPort(apiLn.Addr().String())

	backend := &demo.Backend{APIURL: apiURL, HostPort: apiPort}
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

	wallets, err := setUpDemo(ctx, apiURL, appURL, &id, known)
	if err == nil {
		err = demo.SaveIdentity(ctx, pool, id)
	}
	if err != nil {
		shutdown()
		return fmt.Errorf("set up the demo: %w", err)
	}
	backend.SecretKey = id.SecretKey
	backend.SetWebhookSecret(id.WebhookSecret)
	host.SetApp(id.AppID)
	workers.Add(1)
	go func() {
		defer workers.Done()
		d.logPayments(workCtx, app, id, time.Now())
	}()

	again := "made on this first start; the same on every start (--reset starts over)"
	if known {
		again = "the same as on earlier starts (--reset starts over)"
	}
	pageURL := "http://" + browserAddr(apiLn.Addr()) + "/demo/"
	fmt.Fprintf(d.stdout, `minipay dev is running. Press Ctrl-C to stop.

  host page:    %s   (frame your own mini-app: %s?app=http://localhost:5173)
  mini-app:     %s  (its backend: POST /api/checkout, POST /api/subscribe, POST /webhooks)
  API:          %s  (spec: %s/openapi.yaml)
  console:      %s/console/  (sign in with the secret key, or the admin key for finance)
  database:     %s

  identity:     %s
  admin key:    %s
  host key:     %s
  developer:    %s
  app:          %s
  secret key:   %s
  webhook:      %s -> %s/webhooks
  webhook secret: %s
  demo users:   %s

  sandbox:      minipay trigger EVENT_TYPE --api-key %s makes real objects and events
  catalog:      %s: %s
  settlement:   %s; money matures and pays out while you watch (minipay settlement list)

Paste this into another terminal to work with the demo app from there:

  export MINIPAY_URL=%s MINIPAY_SECRET_KEY=%s MINIPAY_HOST_KEY=%s
`, pageURL, pageURL, appURL, apiURL, apiURL, "http://"+browserAddr(apiLn.Addr()), redactURL(cfg.DatabaseURL), again, cfg.AdminKey, cfg.HostKey, id.DeveloperID, id.AppID,
		id.SecretKey, id.EndpointID, appURL, id.WebhookSecret, strings.Join(wallets, ", "), id.SecretKey,
		catalogNote, describeCatalog(app.checkout.Catalog()), app.schedule, apiURL, id.SecretKey, cfg.HostKey)

	select {
	case err = <-serveErr:
		err = fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		err = nil
	}
	shutdown()
	return err
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// devCatalog is the built-in catalog with holding periods of minutes.
func devCatalog() (*catalog.Catalog, error) {
	def := catalog.Default()
	var opts []catalog.Option
	for _, name := range def.Names() {
		for _, o := range def.Versions(name) {
			h, ok := devHolding[name]
			if !ok {
				h = devHoldingDefault
			}
			o.HoldingPeriod = min(o.HoldingPeriod, h)
			opts = append(opts, o)
		}
	}
	return catalog.New(opts)
}

// describeCatalog is one line: each option's fee and holding period now.
func describeCatalog(c *catalog.Catalog) string {
	var parts []string
	for _, name := range c.Names() {
		o, ok := c.At(name, time.Now())
		if !ok {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s%%, held %s", name, ledger.ToDecimal("CNY", o.FeeBPS).String(), shortDuration(o.HoldingPeriod)))
	}
	return strings.Join(parts, "; ")
}

func shortDuration(d time.Duration) string {
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	return strings.TrimSuffix(s, "0m")
}

// resetDevDatabase drops the dev database so the start that follows makes
// everything anew. It refuses any database not named like a dev one.
func resetDevDatabase(ctx context.Context, dbURL string) error {
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		return fmt.Errorf("--reset: %w", err)
	}
	if !strings.HasSuffix(cfg.Database, "_dev") {
		return usageError("dev --reset drops the database, so it only does so for one whose name ends in _dev, not %q", cfg.Database)
	}
	return pgdb.DropDatabase(ctx, dbURL)
}

// setUpDemo makes (on the first start) or checks (on later ones) the demo
// developer, app, secret key and webhook endpoint, through the API as an
// operator and a developer would, and funds the demo users.
func setUpDemo(ctx context.Context, apiURL, appURL string, id *demo.Identity, known bool) ([]string, error) {
	if !known {
		if err := makeDemoApp(ctx, apiURL, id); err != nil {
			return nil, err
		}
	} else if err := devCall(ctx, apiURL, id.SecretKey, "GET", "/v1/app", nil, nil); err != nil {
		if apiCode(err) != "api_key_invalid" && apiStatus(err) != http.StatusUnauthorized {
			return nil, err
		}
		// The key was rolled meanwhile: roll again, and keep this one.
		var rolled struct {
			SecretKey string `json:"secret_key"`
		}
		if err := devCall(ctx, apiURL, id.AdminKey, "POST", "/v1/apps/"+id.AppID+"/keys/roll", map[string]any{}, &rolled); err != nil {
			return nil, fmt.Errorf("the stored secret key no longer works and rolling it failed: %w", err)
		}
		id.SecretKey = rolled.SecretKey
	}
	if known {
		// A database made by an older minipay dev may lack an option the
		// demo sells now (memberships came later): enable what it needs.
		if err := devCall(ctx, apiURL, id.AdminKey, "PATCH", "/v1/apps/"+id.AppID, map[string]any{"options": demoOptions}, nil); err != nil {
			return nil, fmt.Errorf("enable the demo app's options: %w", err)
		}
	}
	if err := ensureDemoEndpoint(ctx, apiURL, appURL+"/webhooks", id); err != nil {
		return nil, err
	}
	var wallets []string
	for _, u := range devUsers {
		bal, err := topUpTo(ctx, apiURL, id.HostKey, u.ID, u.wallet, "CNY")
		if err != nil {
			return nil, err
		}
		wallets = append(wallets, fmt.Sprintf("%s (%s CNY)", u.ID, bal))
	}
	return wallets, nil
}

// demoOptions are the monetization options the demo app sells through.
var demoOptions = []string{"goods", "virtual_goods", "tip", "subscription"}

func makeDemoApp(ctx context.Context, apiURL string, id *demo.Identity) error {
	var dev struct{ ID string }
	if err := devCall(ctx, apiURL, id.AdminKey, "POST", "/v1/developers", map[string]any{"name": "Demo developer"}, &dev); err != nil {
		return err
	}
	var app struct {
		ID        string `json:"id"`
		SecretKey string `json:"secret_key"`
	}
	if err := devCall(ctx, apiURL, id.AdminKey, "POST", "/v1/apps", map[string]any{"developer": dev.ID, "name": "Tea & Gems",
		"options": demoOptions, "currencies": []string{"CNY"}}, &app); err != nil {
		return err
	}
	id.DeveloperID, id.AppID, id.SecretKey = dev.ID, app.ID, app.SecretKey
	id.EndpointID, id.WebhookSecret = "", ""
	return nil
}

// ensureDemoEndpoint keeps the demo backend's webhook endpoint: made once,
// pointed at the backend's current address, enabled.
func ensureDemoEndpoint(ctx context.Context, apiURL, url string, id *demo.Identity) error {
	var ep struct {
		ID     string `json:"id"`
		URL    string `json:"url"`
		Status string `json:"status"`
		Secret string `json:"secret"`
	}
	if id.EndpointID != "" {
		err := devCall(ctx, apiURL, id.SecretKey, "GET", "/v1/webhook_endpoints/"+id.EndpointID, nil, &ep)
		if err == nil && (ep.URL != url || ep.Status != "enabled") {
			err = devCall(ctx, apiURL, id.SecretKey, "PATCH", "/v1/webhook_endpoints/"+id.EndpointID,
				map[string]any{"url": url, "status": "enabled"}, &ep)
		}
		if err == nil {
			return nil
		}
		if apiStatus(err) != http.StatusNotFound {
			return err
		}
	}
	err := devCall(ctx, apiURL, id.SecretKey, "POST", "/v1/webhook_endpoints", map[string]any{"url": url,
		"enabled_events": []string{"*"}, "description": "minipay dev: the demo mini-app's backend"}, &ep)
	if err != nil {
		return fmt.Errorf("register the webhook endpoint: %w", err)
	}
	id.EndpointID, id.WebhookSecret = ep.ID, ep.Secret
	return nil
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
	if err != nil && apiCode(err) != "wallet_not_found" {
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

// devCall is one API call with a key; failures come back as *apiError.
func devCall(ctx context.Context, apiURL, key, method, path string, body, out any) error {
	c := &apiClient{baseURL: apiURL, key: key, http: http.DefaultClient}
	_, err := c.do(ctx, method, path, body, out)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

func apiCode(err error) string {
	var e *apiError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func apiStatus(err error) int {
	var e *apiError
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
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
