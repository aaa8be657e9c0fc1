package webhooks

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/internal/id"
	"github.com/minipay/minipay/internal/idempotency"
)

// Limits on endpoints.
const (
	EndpointsPerAppMax = 16
	urlLenMax          = 2048
	descriptionLenMax  = 500
)

// Endpoint statuses.
const (
	StatusEnabled  = "enabled"
	StatusDisabled = "disabled"
	statusDeleted  = "deleted"
)

// Owner is who asks: an app, which sees its own endpoints and events and
// its developer's app-less events, and nothing of any other app.
type Owner struct {
	AppID       string
	DeveloperID string
}

// EndpointObject is a webhook endpoint as developers see it.
type EndpointObject struct {
	ID             string   `json:"id"`
	Object         string   `json:"object"`
	App            string   `json:"app"`
	URL            string   `json:"url"`
	Description    string   `json:"description"`
	EnabledEvents  []string `json:"enabled_events"`
	Status         string   `json:"status"`
	DisabledReason *string  `json:"disabled_reason"`
	// Secret is shown once, when the endpoint is created or its secret rotated.
	Secret string `json:"secret,omitempty"`
	// PreviousSecretExpiresAt is when a rotated-out secret stops signing.
	PreviousSecretExpiresAt *string `json:"previous_secret_expires_at"`
	Created                 string  `json:"created"`
	Updated                 string  `json:"updated"`
}

// EndpointParams describes an endpoint to create.
type EndpointParams struct {
	// ID, if not empty, is derived from an idempotency key and RequestHash
	// is the request's fingerprint: creating it again with the same
	// request returns it, with its secret while it is the one the creation
	// made; with another request it is idempotency.ErrConflict.
	ID            string
	RequestHash   []byte
	URL           string
	EnabledEvents []string
	Description   string
}

// EndpointUpdate changes an endpoint; nil fields stay as they are.
type EndpointUpdate struct {
	URL           *string
	EnabledEvents *[]string
	Description   *string
	Status        *string // StatusEnabled or StatusDisabled
}

const endpointColumns = `id, app_id, url, description, enabled_events, status, disabled_reason,
	old_secret_expires_at, created_at, updated_at`

func scanEndpoint(row pgx.Row) (EndpointObject, error) {
	var (
		e                EndpointObject
		oldExp           *time.Time
		created, updated time.Time
	)
	err := row.Scan(&e.ID, &e.App, &e.URL, &e.Description, &e.EnabledEvents, &e.Status, &e.DisabledReason,
		&oldExp, &created, &updated)
	if err != nil {
		return EndpointObject{}, err
	}
	e.Object = "webhook_endpoint"
	e.Created, e.Updated = minipay.Timestamp(created), minipay.Timestamp(updated)
	if oldExp != nil && oldExp.After(time.Now()) {
		s := minipay.Timestamp(*oldExp)
		e.PreviousSecretExpiresAt = &s
	}
	return e, nil
}

// CreateEndpoint creates an endpoint for the owner's app and returns it
// with its signing secret, which is never shown again.
func (s *Service) CreateEndpoint(ctx context.Context, o Owner, p EndpointParams) (EndpointObject, error) {
	if err := s.checkURL(p.URL); err != nil {
		return EndpointObject{}, minipay.Field("url", err)
	}
	events, err := checkEventTypes(p.EnabledEvents)
	if err != nil {
		return EndpointObject{}, err
	}
	if err := checkDescription(p.Description); err != nil {
		return EndpointObject{}, err
	}
	var origin *string // which request made the secret: this creation, when keyed
	if p.ID != "" {
		origin = &p.ID
	} else {
		p.ID = id.New("we")
	}
	secret, key := newSecret()
	var e EndpointObject
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		// Serialize creations per app so the limit holds under concurrency.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('webhook_endpoints:' || $1))`, o.AppID); err != nil {
			return err
		}
		var done bool
		if e, done, err = s.createdBefore(ctx, tx, o, p); done || err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM webhook_endpoints WHERE app_id = $1 AND status <> 'deleted'`, o.AppID).Scan(&n); err != nil {
			return err
		}
		if n >= EndpointsPerAppMax {
			return ErrEndpointLimit
		}
		e, err = scanEndpoint(tx.QueryRow(ctx, `INSERT INTO webhook_endpoints
			(id, app_id, developer_id, url, description, enabled_events, status, secret_enc, request_hash, secret_origin, secret_request_hash)
			VALUES ($1, $2, $3, $4, $5, $6, 'enabled', $7, $8, $9, $8) RETURNING `+endpointColumns,
			p.ID, o.AppID, o.DeveloperID, p.URL, p.Description, events, s.sealSecret(p.ID, key), p.RequestHash, origin))
		e.Secret = secret
		return err
	})
	if err != nil {
		return EndpointObject{}, fmt.Errorf("create webhook endpoint: %w", err)
	}
	return e, nil
}

// createdBefore answers a creation whose idempotency-derived id exists:
// the same request gets the endpoint with the secret it made, as long as
// that is still the endpoint's secret; another request is a conflict.
// done is false when the endpoint does not exist yet.
func (s *Service) createdBefore(ctx context.Context, tx pgx.Tx, o Owner, p EndpointParams) (e EndpointObject, done bool, err error) {
	var (
		stored, sealed []byte
		origin         *string
	)
	e, err = scanEndpoint(prefixScanner{tx.QueryRow(ctx, `SELECT request_hash, secret_origin, secret_enc, `+endpointColumns+`
		FROM webhook_endpoints WHERE id = $1`, p.ID), []any{&stored, &origin, &sealed}})
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return EndpointObject{}, false, nil
	case err != nil:
		return EndpointObject{}, true, err
	case e.App != o.AppID:
		return EndpointObject{}, true, fmt.Errorf("%w: %s belongs to another app", idempotency.ErrConflict, p.ID)
	}
	if err := idempotency.SameRequest(p.ID, stored, p.RequestHash); err != nil {
		return EndpointObject{}, true, err
	}
	if e.Status == statusDeleted || origin == nil || *origin != p.ID {
		return EndpointObject{}, true, fmt.Errorf("%w: it made %s, whose secret has been rotated or which was deleted since",
			idempotency.ErrSecretUnavailable, p.ID)
	}
	if e.Secret, err = s.showSecret(p.ID, sealed); err != nil {
		return EndpointObject{}, true, err
	}
	return e, true, nil
}

// showSecret turns a stored signing secret back into the whsec_ form that
// the request which made it was answered with.
func (s *Service) showSecret(endpointID string, sealed []byte) (string, error) {
	key, err := s.openSecret(endpointID, sealed)
	if err != nil {
		return "", err
	}
	return secretPrefix + base64.StdEncoding.EncodeToString(key), nil
}

// GetEndpoint returns one of the owner's endpoints.
func (s *Service) GetEndpoint(ctx context.Context, o Owner, endpointID string) (EndpointObject, error) {
	e, err := scanEndpoint(s.db.QueryRow(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints
		WHERE id = $1 AND app_id = $2 AND status <> 'deleted'`, endpointID, o.AppID))
	return e, endpointError("get", endpointID, err)
}

// ListEndpoints pages through the owner's endpoints, newest first.
func (s *Service) ListEndpoints(ctx context.Context, o Owner, limit int, startingAfter string) ([]EndpointObject, bool, error) {
	// Newest first by creation time: ids derived from idempotency keys are
	// not in time order.
	rows, err := s.db.Query(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints
		WHERE app_id = $1 AND status <> 'deleted'
		  AND ($2 = '' OR (created_at, id) < (SELECT created_at, id FROM webhook_endpoints WHERE id = $2 AND app_id = $1))
		ORDER BY created_at DESC, id DESC LIMIT $3`,
		o.AppID, startingAfter, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list webhook endpoints: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (EndpointObject, error) { return scanEndpoint(r) })
	if err != nil {
		return nil, false, fmt.Errorf("list webhook endpoints: %w", err)
	}
	return page(out, limit)
}

// UpdateEndpoint changes an endpoint. Enabling a disabled endpoint starts
// its failure count afresh; deliveries that came due while it was
// disabled were canceled (redeliver their events to catch up).
func (s *Service) UpdateEndpoint(ctx context.Context, o Owner, endpointID string, u EndpointUpdate) (EndpointObject, error) {
	var events []string
	if u.URL != nil {
		if err := s.checkURL(*u.URL); err != nil {
			return EndpointObject{}, minipay.Field("url", err)
		}
	}
	if u.EnabledEvents != nil {
		var err error
		if events, err = checkEventTypes(*u.EnabledEvents); err != nil {
			return EndpointObject{}, err
		}
	}
	if u.Description != nil {
		if err := checkDescription(*u.Description); err != nil {
			return EndpointObject{}, err
		}
	}
	if u.Status != nil && *u.Status != StatusEnabled && *u.Status != StatusDisabled {
		return EndpointObject{}, minipay.Field("status", fmt.Errorf("%w: status is enabled or disabled", ErrInvalid))
	}
	e, err := scanEndpoint(s.db.QueryRow(ctx, `UPDATE webhook_endpoints SET
			url = COALESCE($3, url), enabled_events = COALESCE($4, enabled_events),
			description = COALESCE($5, description),
			disabled_reason = CASE WHEN $6::text IS NULL OR $6 = status THEN disabled_reason END,
			failing_since = CASE WHEN $6::text IS NULL OR $6 = status THEN failing_since END,
			status = COALESCE($6, status), updated_at = now(), version = version + 1
		WHERE id = $1 AND app_id = $2 AND status <> 'deleted' RETURNING `+endpointColumns,
		endpointID, o.AppID, u.URL, events, u.Description, u.Status))
	return e, endpointError("update", endpointID, err)
}

// DeleteEndpoint deletes an endpoint: it gets no more events, and its
// pending deliveries are canceled when they come due.
func (s *Service) DeleteEndpoint(ctx context.Context, o Owner, endpointID string) error {
	tag, err := s.db.Exec(ctx, `UPDATE webhook_endpoints SET status = 'deleted', updated_at = now(), version = version + 1
		WHERE id = $1 AND app_id = $2 AND status <> 'deleted'`, endpointID, o.AppID)
	if err != nil {
		return fmt.Errorf("delete webhook endpoint %s: %w", endpointID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: %s", ErrEndpointNotFound, endpointID)
	}
	return nil
}

// Rotation identifies a rotation made under an idempotency key: RotationID
// derived from the key, RequestHash the request's fingerprint. The zero
// value is a rotation without a key.
type Rotation struct {
	RotationID  string
	RequestHash []byte
}

// RotateSecret gives an endpoint a new signing secret, returned once. For
// RotationGrace, deliveries carry signatures with both the new and the
// previous secret, so the developer can deploy the new one without
// dropping webhooks. Rotating again within the grace period retires the
// oldest secret at once. The endpoint remembers which rotation made its
// secret: a retry of that rotation (its answer lost, its record gone) is
// answered with that secret instead of rotating again, which would retire
// the secret the receiver may have deployed.
func (s *Service) RotateSecret(ctx context.Context, o Owner, endpointID string, rot Rotation) (EndpointObject, error) {
	var e EndpointObject
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var (
			current, old *string
			stored       []byte
			sealed       []byte
		)
		err := tx.QueryRow(ctx, `SELECT secret_origin, old_secret_origin, secret_request_hash, secret_enc FROM webhook_endpoints
			WHERE id = $1 AND app_id = $2 AND status <> 'deleted' FOR UPDATE`, endpointID, o.AppID).Scan(&current, &old, &stored, &sealed)
		if err != nil {
			return err
		}
		if rot.RotationID != "" && current != nil && *current == rot.RotationID {
			if err := idempotency.SameRequest(rot.RotationID, stored, rot.RequestHash); err != nil {
				return err
			}
			if e, err = scanEndpoint(tx.QueryRow(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE id = $1`, endpointID)); err != nil {
				return err
			}
			e.Secret, err = s.showSecret(endpointID, sealed)
			return err
		}
		if rot.RotationID != "" && old != nil && *old == rot.RotationID {
			return fmt.Errorf("%w: a later rotation of %s replaced the secret it made", idempotency.ErrSecretUnavailable, endpointID)
		}
		secret, key := newSecret()
		var origin *string
		if rot.RotationID != "" {
			origin = &rot.RotationID
		}
		e, err = scanEndpoint(tx.QueryRow(ctx, `UPDATE webhook_endpoints SET
				old_secret_enc = secret_enc, old_secret_expires_at = now() + $3::bigint * interval '1 microsecond',
				old_secret_origin = secret_origin, secret_enc = $4, secret_origin = $5, secret_request_hash = $6,
				updated_at = now(), version = version + 1
			WHERE id = $1 AND app_id = $2 RETURNING `+endpointColumns,
			endpointID, o.AppID, s.opts.RotationGrace.Microseconds(), s.sealSecret(endpointID, key), origin, rot.RequestHash))
		e.Secret = secret
		return err
	})
	if err != nil {
		return EndpointObject{}, endpointError("rotate secret of", endpointID, err)
	}
	return e, nil
}

// endpointError turns "no row" into ErrEndpointNotFound and wraps the rest.
func endpointError(verb, endpointID string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("%w: %s", ErrEndpointNotFound, endpointID)
	default:
		return fmt.Errorf("%s webhook endpoint %s: %w", verb, endpointID, err)
	}
}

// checkURL accepts absolute https URLs (http too when private addresses
// are allowed) without credentials. It refuses hosts that are loopback,
// private or metadata addresses written out; names are checked after
// resolution, at every connection (see guard).
func (s *Service) checkURL(raw string) error {
	if raw == "" {
		return fmt.Errorf("%w: url is required", ErrMissing)
	}
	u, err := url.Parse(raw)
	if err != nil || len(raw) > urlLenMax || !u.IsAbs() || u.Host == "" || u.Hostname() == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%w: %q (at most %d characters, no credentials or fragment)", ErrURLInvalid, raw, urlLenMax)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && s.opts.AllowPrivate:
	case u.Scheme == "http":
		return fmt.Errorf("%w: %q", ErrURLInsecure, raw)
	default:
		return fmt.Errorf("%w: scheme %q", ErrURLInvalid, u.Scheme)
	}
	if s.opts.AllowPrivate {
		return nil
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return fmt.Errorf("%w: %s", ErrURLNotAllowed, host)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if why := refusedBecause(ip); why != "" {
			return fmt.Errorf("%w: %s is %s", ErrURLNotAllowed, ip, why)
		}
	}
	return nil
}

// checkEventTypes validates enabled_events and returns it sorted, without
// duplicates; "*" stands alone.
func checkEventTypes(types []string) ([]string, error) {
	if len(types) == 0 {
		return nil, minipay.Field("enabled_events", fmt.Errorf("%w: enabled_events lists event types, or [\"*\"] for all", ErrMissing))
	}
	out := make([]string, 0, len(types))
	for i, t := range types {
		if t != "*" && !slices.Contains(Types, t) {
			return nil, minipay.Field(fmt.Sprintf("enabled_events[%d]", i), fmt.Errorf("%w: %q", ErrUnknownEventType, t))
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	if slices.Contains(out, "*") {
		return []string{"*"}, nil
	}
	slices.Sort(out)
	return out, nil
}

func checkDescription(d string) error {
	if !utf8.ValidString(d) || utf8.RuneCountInString(d) > descriptionLenMax || strings.ContainsRune(d, 0) {
		return minipay.Field("description", fmt.Errorf("%w: description is at most %d characters", ErrInvalid, descriptionLenMax))
	}
	return nil
}

// page trims a list fetched with limit+1 rows and says whether there is more.
func page[T any](rows []T, limit int) ([]T, bool, error) {
	if len(rows) > limit {
		return rows[:limit], true, nil
	}
	return rows, false, nil
}

// DisableAsFailing disables an enabled endpoint of o as the dispatcher
// disables one that has failed for DisableAfter, with the same
// webhook_endpoint.disabled event. Sandboxes use it to show that event
// without days of failures; nothing else should.
func (s *Service) DisableAsFailing(ctx context.Context, o Owner, endpointID string) (EndpointObject, error) {
	tag, err := s.db.Exec(ctx, `UPDATE webhook_endpoints
		SET failing_since = least(coalesce(failing_since, now()), now() - $3::bigint * interval '1 microsecond')
		WHERE id = $1 AND app_id = $2 AND status = 'enabled'`, endpointID, o.AppID, s.opts.DisableAfter.Microseconds())
	if err != nil {
		return EndpointObject{}, endpointError("disable", endpointID, err)
	}
	if tag.RowsAffected() == 0 {
		return EndpointObject{}, fmt.Errorf("%w: %s (or it is not enabled)", ErrEndpointNotFound, endpointID)
	}
	if err := s.disableFailing(ctx, []string{endpointID}); err != nil {
		return EndpointObject{}, err
	}
	return s.GetEndpoint(ctx, o, endpointID)
}
