package api_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/minipay/minipay/apps"
)

// TestNoSecretAtRest creates every kind of secret minipay hands out, each
// under an Idempotency-Key, replays each request, and then searches every
// text, bytea, json and array column of every table for each secret: keys
// are stored only as hashes and signing secrets only encrypted, and the
// idempotency records that replay them must not undo that.
//
// Client secrets of checkout sessions are not secrets in this sense: the
// app reads them back with every GET of the session, they only let the
// host's own server (with the host key) pay that one session, and they
// stop mattering once it is paid or expired; they are kept in the session
// row. They must still not sit in the idempotency records.
func TestNoSecretAtRest(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	secrets := map[string]string{ // what → value
		"admin key (given)": e.adminKey,
		"host key (given)":  e.hostKey,
	}
	// A generated operator key: the host key retired, none valid left.
	e.exec(`UPDATE api_keys SET expires_at = now() WHERE kind = 'host'`)
	host, err := e.apps.EnsureOperatorKey(ctx, apps.KindHost, "")
	if err != nil || host.Generated == "" {
		t.Fatalf("generated host key %+v, %v", host, err)
	}
	secrets["host key (generated)"] = host.Generated
	e.hostKey = host.Generated

	// post sends a request twice with one Idempotency-Key: the replay must
	// carry the same secret as the first answer.
	post := func(what, path, key, idem, field string, body any) resp {
		t.Helper()
		first := e.call("POST", path, key, body, "Idempotency-Key", idem)
		if first.status >= 300 || first.str(field) == "" {
			t.Fatalf("%s: %d %s", what, first.status, first.raw)
		}
		again := e.call("POST", path, key, body, "Idempotency-Key", idem)
		if again.header.Get("Idempotent-Replayed") != "true" || again.str(field) != first.str(field) {
			t.Fatalf("%s replayed: %d %s; want the first answer's %s", what, again.status, again.raw, field)
		}
		secrets[what] = first.str(field)
		return first
	}
	dev := e.must(http.StatusCreated, e.admin("POST", "/v1/developers", map[string]any{"name": "dev"}, "Idempotency-Key", "dev-1"))
	app := post("app secret key", "/v1/apps", e.adminKey, "app-1", "secret_key", map[string]any{
		"developer": dev.str("id"), "name": "shop", "options": []string{"goods"}, "currencies": []string{"CNY"}})
	roll := "/v1/apps/" + app.str("id") + "/keys/roll"
	post("rolled key", roll, e.adminKey, "roll-1", "secret_key", map[string]any{})
	post("rolled key (old ones expired now)", roll, e.adminKey, "roll-2", "secret_key", map[string]any{"expire_old_now": true})
	key := secrets["rolled key (old ones expired now)"]
	ep := post("webhook signing secret", "/v1/webhook_endpoints", key, "we-1", "secret", map[string]any{
		"url": "http://127.0.0.1:9/hooks", "enabled_events": []string{"*"}})
	post("rotated signing secret", "/v1/webhook_endpoints/"+ep.str("id")+"/rotate_secret", key, "rot-1", "secret", map[string]any{})

	e.topUp("u", "10.00", "CNY")
	sess := post("client secret", "/v1/checkout/sessions", key, "cs-1", "client_secret", map[string]any{
		"amount": "1.00", "currency": "CNY", "option": "goods"})
	e.must(http.StatusOK, e.host("POST", "/v1/checkout/sessions/"+sess.str("id")+"/confirm",
		map[string]any{"user_id": "u", "client_secret": sess.str("client_secret")}, "Idempotency-Key", "confirm-1"))

	found := searchDatabase(t, e, secrets)
	for what, places := range found {
		if what == "client secret" && len(places) == 1 && places[0] == "checkout_sessions.client_secret" {
			continue
		}
		t.Errorf("%s stored in clear in %v", what, places)
	}
}

// searchDatabase looks for each secret in every column that can hold text
// and returns where it found each. A signing secret is also looked for as
// its base64 part and its raw bytes.
func searchDatabase(t *testing.T, e *env, secrets map[string]string) map[string][]string {
	t.Helper()
	ctx := context.Background()
	rows, err := e.db.Pool.Query(ctx, `SELECT table_name, column_name, data_type FROM information_schema.columns
		WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'bytea', 'json', 'jsonb', 'ARRAY')
		ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	type column struct{ table, name, typ string }
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (column, error) {
		var c column
		return c, r.Scan(&c.table, &c.name, &c.typ)
	})
	if err != nil || len(cols) < 20 {
		t.Fatalf("columns: %d, %v", len(cols), err)
	}
	found := map[string][]string{}
	for what, secret := range secrets {
		needles := [][]byte{[]byte(secret)}
		if b64, ok := strings.CutPrefix(secret, "whsec_"); ok {
			raw, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				t.Fatal(err)
			}
			needles = append(needles, []byte(b64), raw)
		}
		for _, c := range cols {
			ident := pgx.Identifier{c.name}.Sanitize()
			for _, needle := range needles {
				var sql string
				var arg any = needle
				if c.typ == "bytea" {
					sql = fmt.Sprintf(`SELECT count(*) FROM %s WHERE position($1::bytea IN %s) > 0`, pgx.Identifier{c.table}.Sanitize(), ident)
				} else {
					sql = fmt.Sprintf(`SELECT count(*) FROM %s WHERE strpos(%s::text, $1) > 0`, pgx.Identifier{c.table}.Sanitize(), ident)
					arg = string(needle)
					if !isText(needle) {
						continue
					}
				}
				var n int
				if err := e.db.Pool.QueryRow(ctx, sql, arg).Scan(&n); err != nil {
					t.Fatalf("%s: %v", sql, err)
				}
				if n > 0 {
					found[what] = append(found[what], c.table+"."+c.name)
					break
				}
			}
		}
	}
	return found
}

func isText(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// TestRollExpiresOldKeysNow: a leaked app key is revoked with a roll that
// expires the old keys at once, on this replica and on another.
func TestRollExpiresOldKeysNow(t *testing.T) {
	e := newEnv(t)
	other := newEnvSharing(e)
	shop := e.tenant("shop", []string{"goods"}, []string{"CNY"})
	for _, env := range []*env{e, other} {
		e.must(http.StatusOK, env.call("GET", "/v1/balance", shop.key, nil)) // cached on both
	}
	r := e.must(http.StatusOK, e.admin("POST", "/v1/apps/"+shop.app+"/keys/roll", map[string]any{"expire_old_now": true}))
	if at, err := time.Parse(time.RFC3339, r.str("previous_keys_expire_at")); err != nil || time.Since(at) < 0 {
		t.Fatalf("roll: %s", r.raw)
	}
	if s := e.call("GET", "/v1/balance", shop.key, nil); s.status != http.StatusUnauthorized {
		t.Fatalf("the old key on this replica after expire_old_now: %d", s.status)
	}
	e.must(http.StatusOK, e.call("GET", "/v1/balance", r.str("secret_key"), nil))
	deadline := time.Now().Add(15 * time.Second) // other replicas cache authentications for up to 10 s
	for other.call("GET", "/v1/balance", shop.key, nil).status != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("another replica still accepts the revoked key")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
