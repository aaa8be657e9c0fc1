package seal

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealOpens(t *testing.T) {
	s := New([]byte("server secret"), "purpose a")
	sealed := s.Seal([]byte("whsec_x"), []byte("we_1"))
	if bytes.Contains(sealed, []byte("whsec_x")) {
		t.Fatal("plaintext visible in the sealed value")
	}
	if got, err := s.Open(sealed, []byte("we_1")); err != nil || string(got) != "whsec_x" {
		t.Fatalf("open: %q %v", got, err)
	}
	for name, open := range map[string]func() ([]byte, error){
		"other aad":     func() ([]byte, error) { return s.Open(sealed, []byte("we_2")) },
		"other purpose": func() ([]byte, error) { return New([]byte("server secret"), "purpose b").Open(sealed, []byte("we_1")) },
		"other secret":  func() ([]byte, error) { return New([]byte("another"), "purpose a").Open(sealed, []byte("we_1")) },
		"truncated":     func() ([]byte, error) { return s.Open(sealed[:10], []byte("we_1")) },
		"not sealed":    func() ([]byte, error) { return s.Open([]byte(`{"secret":"x"}`), []byte("we_1")) },
	} {
		if _, err := open(); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: %v, want ErrOpen", name, err)
		}
	}
}
