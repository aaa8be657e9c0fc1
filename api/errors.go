package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/minipay/minipay"
	"github.com/minipay/minipay/apps"
)

// coded is implemented by every domain error (minipay.Error, ledger.Error).
type coded interface {
	error
	Code() string
	Kind() string
}

// errorBody is the error object of every failed response.
type errorBody struct {
	Error errorObject `json:"error"`
}

type errorObject struct {
	Type      string `json:"type"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	Param     string `json:"param,omitempty"`
	RequestID string `json:"request_id"`
}

// statusOfKind maps the kinds that only HTTP has to their status; the
// domain's kinds map through minipay.HTTPStatus. This and errorType are
// the one place where domain errors become HTTP.
var statusOfKind = map[string]int{
	kindTooLarge:         http.StatusRequestEntityTooLarge,
	kindUnsupportedMedia: http.StatusUnsupportedMediaType,
	kindMethodNotAllowed: http.StatusMethodNotAllowed,
}

func statusOf(kind string) int {
	if s, ok := statusOfKind[kind]; ok {
		return s
	}
	return minipay.HTTPStatus(kind)
}

// Kinds that only HTTP has.
const (
	kindTooLarge         = "too_large"
	kindUnsupportedMedia = "unsupported_media_type"
	kindMethodNotAllowed = "method_not_allowed"
)

func errorType(status int, code string) string {
	switch {
	case strings.HasPrefix(code, "idempotency_"):
		return "idempotency_error"
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusForbidden:
		return "permission_error"
	case status == http.StatusPaymentRequired:
		return "payment_error"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status >= 500:
		return "api_error"
	default:
		return "invalid_request_error"
	}
}

// writeError answers with the error object for err. Errors without a code
// are server faults: logged in full, answered with a bland 500.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	markTransient(r, err)
	obj := errorObject{RequestID: requestID(r.Context())}
	status := http.StatusInternalServerError
	var c coded
	switch {
	case errors.As(err, &c):
		status = statusOf(c.Kind())
		if status == 0 {
			status = http.StatusInternalServerError
		}
		obj.Code = c.Code()
		obj.Message, obj.Param, _ = minipay.PublicMessage(err, principal(r).Kind == apps.KindAdmin)
	case errors.Is(err, context.DeadlineExceeded):
		status = http.StatusServiceUnavailable
		obj.Code, obj.Message = "timeout", "the request took too long; retry with the same Idempotency-Key"
	default:
		obj.Code, obj.Message = "internal_error", "internal error; retry with the same Idempotency-Key"
	}
	if status >= 500 {
		s.Log.Error("request failed", "request_id", obj.RequestID, "method", r.Method, "path", r.URL.Path, "err", err)
	}
	obj.Type = errorType(status, obj.Code)
	writeJSON(w, status, errorBody{Error: obj})
}

// Errors of the HTTP layer itself.
var (
	errInvalidJSON  = minipay.NewError(minipay.KindInvalid, "invalid_json", "the body is not valid JSON")
	errInvalidUTF8  = minipay.NewError(minipay.KindInvalid, "invalid_utf8", "the body is not valid UTF-8")
	errUnknownField = minipay.NewError(minipay.KindInvalid, "unknown_field", "unknown field")
	errInvalidType  = minipay.NewError(minipay.KindInvalid, "invalid_type", "wrong type")
	errInvalidParam = minipay.NewError(minipay.KindInvalid, "parameter_invalid", "invalid parameter")
	errTooLarge     = minipay.NewError(kindTooLarge, "body_too_large", "the body exceeds 1 MiB")
	errContentType  = minipay.NewError(kindUnsupportedMedia, "unsupported_media_type", "send the body as Content-Type: application/json")
	errNotFound     = minipay.NewError(minipay.KindNotFound, "resource_missing", "no such route")
	errMethod       = minipay.NewError(kindMethodNotAllowed, "method_not_allowed", "method not allowed on this route")
	errNoKey        = minipay.NewError(minipay.KindUnauthenticated, "missing_api_key", "send your API key as Authorization: Bearer <key>")
	errWrongKind    = minipay.NewError(minipay.KindForbidden, "forbidden", "this key may not use this route")
	errShuttingDown = minipay.NewError(minipay.KindUnavailable, "shutting_down", "the server is shutting down; retry")
	errRateLimited  = minipay.NewError(minipay.KindRateLimited, "rate_limited", "too many requests; retry after the Retry-After seconds")
)
