package api_test

import (
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"gopkg.in/yaml.v3"

	"github.com/minipay/minipay/docs"
)

// TestOpenAPIMatchesRouter checks that every route the router serves is in
// docs/openapi.yaml, and the reverse, method by method.
func TestOpenAPIMatchesRouter(t *testing.T) {
	e := newEnv(t)
	var spec struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(docs.OpenAPI, &spec); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	documented := map[string]bool{}
	for path, ops := range spec.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	served := map[string]bool{}
	router := e.handler.(chi.Routes)
	err := chi.Walk(router, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		route = strings.TrimSuffix(strings.ReplaceAll(route, "/*/", "/"), "/")
		served[method+" "+route] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var missing, extra []string
	for r := range served {
		if !documented[r] {
			missing = append(missing, r)
		}
	}
	for r := range documented {
		if !served[r] {
			extra = append(extra, r)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("routes not in openapi.yaml: %v\ndocumented routes not served: %v", missing, extra)
	}
	if r := e.call("GET", "/openapi.yaml", "", nil); r.status != 200 || string(r.raw) != string(docs.OpenAPI) {
		t.Fatalf("/openapi.yaml does not serve the document")
	}
}

// TestOpenAPIOperationsComplete: every operation has a unique operationId
// (the SDKs' generated types name operations by it) and declares every
// response the API's middleware can give it, so clients can trust the
// document: 401 for any /v1 route, 403 unless every kind of key may use
// it, 404 where a path names an object, 400, 409 and 413 for a body, 429
// for the rate limit. redocly lint (make openapi-lint) checks the rest.
func TestOpenAPIOperationsComplete(t *testing.T) {
	var spec struct {
		Paths map[string]map[string]struct {
			OperationID string         `yaml:"operationId"`
			Keys        []string       `yaml:"x-minipay-keys"`
			Responses   map[string]any `yaml:"responses"`
		} `yaml:"paths"`
	}
	if err := yaml.Unmarshal(docs.OpenAPI, &spec); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	ids := map[string]string{}
	for path, ops := range spec.Paths {
		for method, op := range ops {
			name := strings.ToUpper(method) + " " + path
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", name)
			} else if other, dup := ids[op.OperationID]; dup {
				t.Errorf("%s and %s share operationId %s", name, other, op.OperationID)
			}
			ids[op.OperationID] = name
			if !strings.HasPrefix(path, "/v1/") {
				continue
			}
			want := []string{"401", "429"}
			if len(op.Keys) < 3 {
				want = append(want, "403")
			}
			if strings.Contains(path, "{") {
				want = append(want, "404")
			}
			if method == "post" || method == "patch" {
				want = append(want, "400", "413")
			}
			if method == "post" { // Idempotency-Key: the same key with another body
				want = append(want, "409")
			}
			for _, code := range want {
				if _, ok := op.Responses[code]; !ok {
					t.Errorf("%s does not declare %s: add \"%s\": {$ref: \"#/components/responses/…\"}", name, code, code)
				}
			}
		}
	}
}

// TestOpenAPINoStrayKeys: in a flow mapping, an unquoted comma inside a
// description ends the description and turns the rest into a key of its
// own ({description: the session, captured} has a key "captured"). No
// key of the document has a space and no value, so such a key is always
// that mistake. (redocly lint finds it too, as a struct error.)
func TestOpenAPINoStrayKeys(t *testing.T) {
	var root yaml.Node
	if err := yaml.Unmarshal(docs.OpenAPI, &root); err != nil {
		t.Fatal(err)
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if strings.Contains(k.Value, " ") && v.Tag == "!!null" {
					t.Errorf("docs/openapi.yaml:%d: %q is a key: quote the description before it (description: \"…, …\")", k.Line, k.Value)
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
}
