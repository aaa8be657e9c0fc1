// Package id makes the prefixed, time-ordered identifiers minipay hands out
// (acct_…, tr_…, cs_…).
//
// An id is a prefix, an underscore and 26 Crockford base32 characters: 48 bits
// of milliseconds since the Unix epoch followed by 80 random bits, as in ULID.
// Ids made later sort after ids made earlier (to the millisecond), so cursor
// pagination by id follows creation order and B-tree inserts stay local.
package id

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"strings"
	"time"
)

// alphabet is Crockford's base32: no I, L, O or U, so ids survive being read aloud.
const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// encoding writes bits most significant first, so byte order is sort order.
var encoding = base32.NewEncoding(alphabet).WithPadding(base32.NoPadding)

// bodyLen is the length of the part after the prefix.
const bodyLen = 26

// New returns a fresh id with the given prefix, such as New("acct").
// It is safe for concurrent use.
func New(prefix string) string {
	var raw [16]byte
	ms := uint64(time.Now().UnixMilli())
	binary.BigEndian.PutUint16(raw[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(raw[2:6], uint32(ms))
	if _, err := rand.Read(raw[6:]); err != nil {
		// crypto/rand never fails on supported platforms; an id made from a
		// predictable source would be worse than stopping.
		panic("id: crypto/rand: " + err.Error())
	}
	return prefix + "_" + encoding.EncodeToString(raw[:])
}

// Valid reports whether s looks like an id with the given prefix.
func Valid(prefix, s string) bool {
	body, ok := strings.CutPrefix(s, prefix+"_")
	if !ok || len(body) != bodyLen {
		return false
	}
	for i := 0; i < len(body); i++ {
		if strings.IndexByte(alphabet, body[i]) < 0 {
			return false
		}
	}
	return true
}
