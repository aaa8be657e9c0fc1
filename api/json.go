package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/minipay/minipay"
)

// BodyMax is the largest request body accepted.
const BodyMax = 1 << 20

type bodyKey struct{}

// readBody reads the whole body (at most BodyMax) into the context, so the
// idempotency layer can fingerprint it and handlers can decode it.
func (s *Server) readBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !urlStorable(r) {
			s.writeError(w, r, errURLText)
			return
		}
		if r.Body == nil || r.Method == http.MethodGet || r.Method == http.MethodDelete {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, BodyMax))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				s.writeError(w, r, errTooLarge)
				return
			}
			s.writeError(w, r, fmt.Errorf("%w: reading the body failed", errInvalidJSON))
			return
		}
		if len(bytes.TrimSpace(body)) > 0 {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != "application/json" {
				s.writeError(w, r, errContentType)
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), bodyKey{}, body)))
	})
}

func bodyOf(r *http.Request) []byte {
	b, _ := r.Context().Value(bodyKey{}).([]byte)
	return b
}

// decode parses the request body into v strictly: valid UTF-8, one JSON
// object, no unknown fields, names exactly as documented (case included)
// and none twice, right types. An empty body decodes as {}.
func decode(r *http.Request, v any) error {
	body := bodyOf(r)
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if !utf8.Valid(body) {
		return errInvalidUTF8
	}
	if hasNUL(body) {
		return errNULText
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if dec.More() {
		return fmt.Errorf("%w: unexpected data after the JSON object", errInvalidJSON)
	}
	return exactKeys(body, reflect.TypeOf(v))
}

// PostgreSQL text cannot hold the NUL character, and a string with one
// would fail deep inside a query as a server error; it is refused at the
// edge instead, in the body and in the URL.
var (
	errNULText = minipay.NewError(minipay.KindInvalid, "invalid_string", "strings may not contain the NUL character (\\u0000)")
	errURLText = minipay.NewError(minipay.KindInvalid, "invalid_url", "the URL path and query must be UTF-8 without NUL characters")
)

// hasNUL reports whether the JSON text has a \u0000 escape (a raw NUL is
// already invalid JSON). An escape is one preceded by an even number of
// backslashes: "\\u0000" is a backslash and the text u0000.
func hasNUL(body []byte) bool {
	for i := 0; ; {
		j := bytes.Index(body[i:], []byte(`\u0000`))
		if j < 0 {
			return false
		}
		j += i
		n := 0
		for k := j - 1; k >= 0 && body[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return true
		}
		i = j + 1
	}
}

// urlStorable reports whether the decoded path and every query parameter
// are valid UTF-8 without NUL, so they can reach the database as text.
func urlStorable(r *http.Request) bool {
	ok := func(s string) bool { return utf8.ValidString(s) && !strings.Contains(s, "\x00") }
	if !ok(r.URL.Path) {
		return false
	}
	for k, vs := range r.URL.Query() {
		if !ok(k) {
			return false
		}
		for _, v := range vs {
			if !ok(v) {
				return false
			}
		}
	}
	return true
}

func decodeError(err error) error {
	var (
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syntax):
		return fmt.Errorf("%w: %s at offset %d", errInvalidJSON, syntax.Error(), syntax.Offset)
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return fmt.Errorf("%w: the body must be a JSON object", errInvalidJSON)
		}
		return minipay.Field(field, fmt.Errorf("%w: %s must be %s, not %s", errInvalidType, field, jsonTypeName(typeErr.Type.Kind().String()), typeErr.Value))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("%w: the JSON ends early", errInvalidJSON)
	}
	// encoding/json reports unknown fields only as text.
	const prefix = "json: unknown field "
	if msg := err.Error(); len(msg) > len(prefix) && msg[:len(prefix)] == prefix {
		name, _ := strconv.Unquote(msg[len(prefix):])
		return minipay.Field(name, fmt.Errorf("%w: %s", errUnknownField, msg[len(prefix):]))
	}
	return fmt.Errorf("%w: %v", errInvalidJSON, err)
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string (amounts are decimal strings such as \"12.34\")"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	default:
		return "a number"
	}
}

var newline = []byte("\n")

// writeJSON writes v with status. A json.RawMessage is written as it is:
// it was encoded as this function would have (checkout.Session.PublicJSON).
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if raw, ok := v.(json.RawMessage); ok {
		_, _ = w.Write(raw)
		_, _ = w.Write(newline) // as json.Encoder ends every value
		return
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// list is the envelope of every list response.
type list[T any] struct {
	Object  string `json:"object"`
	Data    []T    `json:"data"`
	HasMore bool   `json:"has_more"`
}

func newList[T any](data []T, hasMore bool) list[T] {
	if data == nil {
		data = []T{}
	}
	return list[T]{Object: "list", Data: data, HasMore: hasMore}
}

// listOf is a page of items, each as render shows it.
func listOf[T, U any](items []T, hasMore bool, render func(T) U) list[U] {
	data := make([]U, len(items))
	for i, it := range items {
		data[i] = render(it)
	}
	return newList(data, hasMore)
}

// pageParams reads ?limit= (1–100, default 10) and ?starting_after=.
func pageParams(r *http.Request) (limit int, after string, err error) {
	limit = 10
	if s := r.URL.Query().Get("limit"); s != "" {
		limit, err = strconv.Atoi(s)
		if err != nil || limit < 1 || limit > 100 {
			return 0, "", minipay.Field("limit", fmt.Errorf("%w: limit must be an integer from 1 to 100", errInvalidParam))
		}
	}
	return limit, r.URL.Query().Get("starting_after"), nil
}

func optionalTimestamp(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := minipay.Timestamp(t)
	return &s
}
