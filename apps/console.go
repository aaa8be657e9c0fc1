package apps

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/minipay/minipay"
)

// ConsoleIdle is how long a console session lasts without a request.
const ConsoleIdle = 12 * time.Hour

// Errors of console sign-in.
var (
	// ErrSignInRefused: the key is valid but of a kind that may not sign
	// in to the console. Only its holder can see it, so saying so reveals
	// nothing to someone guessing keys.
	ErrSignInRefused = minipay.NewError(minipay.KindForbidden, "console_refused", "this key cannot sign in to the console")
	// ErrConsoleSession: the session is unknown, signed out, idle for
	// longer than ConsoleIdle, or its key no longer works. Sign in again.
	ErrConsoleSession = minipay.NewError(minipay.KindUnauthenticated, "console_session_invalid", "sign in again")
)

// SignIn exchanges an API key of one of kinds for a new console session
// and returns the session's id, which only the caller ever sees: it is
// stored hashed. A wrong key is ErrUnauthenticated, whatever kind it
// pretends to be.
func (s *Service) SignIn(ctx context.Context, key string, kinds ...KeyKind) (sessionID string, p Principal, err error) {
	p, err = s.Authenticate(ctx, key)
	if err != nil {
		return "", Principal{}, err
	}
	if !slices.Contains(kinds, p.Kind) {
		return "", Principal{}, ErrSignInRefused
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", Principal{}, fmt.Errorf("sign in: %w", err)
	}
	sessionID = base64.RawURLEncoding.EncodeToString(raw[:])
	if _, err := s.db.Exec(ctx, `INSERT INTO console_sessions (hash, key_id) VALUES ($1, $2)`,
		hashKey(sessionID), p.KeyID); err != nil {
		return "", Principal{}, fmt.Errorf("sign in: %w", err)
	}
	return sessionID, p, nil
}

// ConsoleSession returns who a console session belongs to and counts the
// call as activity, so the session lasts ConsoleIdle from now. A session
// that ended is ErrConsoleSession.
func (s *Service) ConsoleSession(ctx context.Context, sessionID string) (Principal, error) {
	if sessionID == "" || len(sessionID) > 100 {
		return Principal{}, ErrConsoleSession
	}
	var (
		p            Principal
		appID, devID *string
	)
	err := s.db.QueryRow(ctx, `
		UPDATE console_sessions s SET last_seen_at = now()
		FROM api_keys k LEFT JOIN apps a ON a.id = k.app_id
		WHERE s.hash = $1 AND k.id = s.key_id
		  AND s.last_seen_at > now() - $2::bigint * interval '1 microsecond'
		  AND (k.expires_at IS NULL OR k.expires_at > now())
		RETURNING k.id, k.kind, k.app_id, a.developer_id`, hashKey(sessionID), ConsoleIdle.Microseconds()).
		Scan(&p.KeyID, &p.Kind, &appID, &devID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Principal{}, ErrConsoleSession
	}
	if err != nil {
		return Principal{}, fmt.Errorf("console session: %w", err)
	}
	if appID != nil {
		p.AppID, p.DeveloperID = *appID, *devID
	}
	return p, nil
}

// SignOut ends a console session. Ending one that already ended is not an
// error.
func (s *Service) SignOut(ctx context.Context, sessionID string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM console_sessions WHERE hash = $1`, hashKey(sessionID)); err != nil {
		return fmt.Errorf("sign out: %w", err)
	}
	return nil
}

// PurgeConsoleSessions deletes up to limit sessions that ended by being
// idle, and returns how many.
func (s *Service) PurgeConsoleSessions(ctx context.Context, limit int) (int, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM console_sessions WHERE hash IN (
		SELECT hash FROM console_sessions WHERE last_seen_at <= now() - $1::bigint * interval '1 microsecond' LIMIT $2)`,
		ConsoleIdle.Microseconds(), limit)
	if err != nil {
		return 0, fmt.Errorf("purge console sessions: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
