package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

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
// beside t, the type the body decodes into; body is known to be valid.
func exactKeys(body []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	return walkKeys(dec, t, "")
}

func walkKeys(dec *json.Decoder, t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := dec.Token()
	if err != nil {
		return nil // the decoder proper reports malformed JSON
	}
	switch tok {
	case json.Delim('{'):
		return walkObject(dec, t, path)
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := walkKeys(dec, elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		_, _ = dec.Token() // ]
	}
	return nil
}

func walkObject(dec *json.Decoder, t reflect.Type, path string) error {
	var fields map[string]reflect.Type
	var elem reflect.Type // a map's values
	switch {
	case t == nil:
	case t.Kind() == reflect.Struct:
		fields = jsonFields(t)
	case t.Kind() == reflect.Map:
		elem = t.Elem()
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		name, _ := tok.(string)
		at := name
		if path != "" {
			at = path + "." + name
		}
		if seen[name] {
			return minipay.Field(at, fmt.Errorf("%w: %q", errDuplicateKey, name))
		}
		seen[name] = true
		next := elem
		if fields != nil {
			ft, ok := fields[name]
			if !ok {
				return minipay.Field(at, fmt.Errorf("%w: %q%s (names are case-sensitive)", errUnknownField, name, suggestion(fields, name)))
			}
			next = ft
		}
		if err := walkKeys(dec, next, at); err != nil {
			return err
		}
	}
	_, _ = dec.Token() // }
	return nil
}

func suggestion(fields map[string]reflect.Type, name string) string {
	for f := range fields {
		if strings.EqualFold(f, name) {
			return fmt.Sprintf(", did you mean %q?", f)
		}
	}
	return ""
}

// jsonFields maps the JSON names of a struct's fields, as encoding/json
// names them, to their types; fields of embedded structs are promoted.
func jsonFields(t reflect.Type) map[string]reflect.Type {
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
	return out
}
