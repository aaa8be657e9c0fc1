package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/minipay/minipay"
)

// errDuplicateKey: an object of the body names the same member twice.
var errDuplicateKey = minipay.NewError(minipay.KindInvalid, "duplicate_key", "a JSON object names the same member twice")

// exactKeys refuses what encoding/json quietly accepts: a member named
// twice in one object (it keeps the last) and a struct field named in
// another case (it matches names regardless of case). Both would let a
// body mean something else than the idempotency fingerprint, which keeps
// every member as written, says: {"amount":"1.00","AMOUNT":"9.00"} would
// refund 9.00 under a key first used for 1.00. It walks the JSON text
// beside t, the type the body decoded into; body is known to be valid
// JSON. Every request body passes here, so it scans the bytes itself
// rather than through json.Decoder.Token, which allocates per token.
func exactKeys(body []byte, t reflect.Type) error {
	s := keyScanner{b: body}
	return s.value(t, "")
}

// keyScanner walks valid JSON text.
type keyScanner struct {
	b []byte
	i int
}

func (s *keyScanner) space() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

// value walks the value at s.i, checking the names of its objects against
// t (nil: any names, duplicates still refused); path names it in errors.
func (s *keyScanner) value(t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	s.space()
	if s.i >= len(s.b) {
		return nil
	}
	switch s.b[s.i] {
	case '{':
		return s.object(t, path)
	case '[':
		return s.array(t, path)
	case '"':
		s.skipString()
	default: // a number, true, false or null
		for s.i < len(s.b) && !strings.ContainsRune(",]} \t\n\r", rune(s.b[s.i])) {
			s.i++
		}
	}
	return nil
}

// skipString moves past the string at s.i and reports whether it holds an
// escape.
func (s *keyScanner) skipString() (escaped bool) {
	for s.i++; s.i < len(s.b); s.i++ {
		switch s.b[s.i] {
		case '\\':
			escaped = true
			s.i++
		case '"':
			s.i++
			return escaped
		}
	}
	return escaped
}

func (s *keyScanner) array(t reflect.Type, path string) error {
	var elem reflect.Type
	if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		elem = t.Elem()
	}
	s.i++ // [
	for n := 0; ; n++ {
		s.space()
		if s.i >= len(s.b) || s.b[s.i] == ']' {
			s.i++
			return nil
		}
		if err := s.value(elem, path+"["+strconv.Itoa(n)+"]"); err != nil {
			return err
		}
		s.space()
		if s.i < len(s.b) && s.b[s.i] == ',' {
			s.i++
		}
	}
}

func (s *keyScanner) object(t reflect.Type, path string) error {
	var fields map[string]reflect.Type
	var elem reflect.Type // a map's values
	switch {
	case t == nil:
	case t.Kind() == reflect.Struct:
		fields = jsonFields(t)
	case t.Kind() == reflect.Map:
		elem = t.Elem()
	}
	var seenBuf [16][]byte
	seen := seenBuf[:0] // the names so far; objects here are small
	var seenMany map[string]bool
	s.i++ // {
	for {
		s.space()
		if s.i >= len(s.b) || s.b[s.i] == '}' {
			s.i++
			return nil
		}
		start := s.i
		var raw []byte
		if escaped := s.skipString(); escaped {
			var name string
			if err := json.Unmarshal(s.b[start:s.i], &name); err != nil {
				return nil // not valid JSON after all: the decoder proper reports it
			}
			raw = []byte(name)
		} else {
			raw = s.b[start+1 : s.i-1]
		}
		if seenBefore(&seen, &seenMany, raw) {
			return minipay.Field(member(path, raw), fmt.Errorf("%w: %q", errDuplicateKey, raw))
		}
		next := elem
		if fields != nil {
			ft, ok := fields[string(raw)]
			if !ok {
				return minipay.Field(member(path, raw), fmt.Errorf("%w: %q%s (names are case-sensitive)", errUnknownField, raw, suggestion(fields, string(raw))))
			}
			next = ft
		}
		s.space()
		s.i++ // :
		s.space()
		child := ""
		if s.i < len(s.b) && (s.b[s.i] == '{' || s.b[s.i] == '[') {
			child = member(path, raw)
		}
		if err := s.value(next, child); err != nil {
			return err
		}
		s.space()
		if s.i < len(s.b) && s.b[s.i] == ',' {
			s.i++
		}
	}
}

// member names the member name of the object at path, for errors.
func member(path string, name []byte) string {
	if path == "" {
		return string(name)
	}
	return path + "." + string(name)
}

// seenBefore records name among an object's names and reports whether it
// was there: a scan of a short list, a map once the object is large.
func seenBefore(seen *[][]byte, many *map[string]bool, name []byte) bool {
	const listMax = 32
	if *many != nil {
		if (*many)[string(name)] {
			return true
		}
		(*many)[string(name)] = true
		return false
	}
	for _, n := range *seen {
		if bytes.Equal(n, name) {
			return true
		}
	}
	*seen = append(*seen, name)
	if len(*seen) > listMax {
		*many = make(map[string]bool, 2*listMax)
		for _, n := range *seen {
			(*many)[string(n)] = true
		}
	}
	return false
}

func suggestion(fields map[string]reflect.Type, name string) string {
	for f := range fields {
		if strings.EqualFold(f, name) {
			return fmt.Sprintf(", did you mean %q?", f)
		}
	}
	return ""
}

// fieldsOf caches jsonFields: request types are few and fixed.
var fieldsOf sync.Map // reflect.Type → map[string]reflect.Type

// jsonFields maps the JSON names of a struct's fields, as encoding/json
// names them, to their types; fields of embedded structs are promoted.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldsOf.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					out[k] = v
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	fieldsOf.Store(t, out)
	return out
}
