package minipay

import (
	"errors"
	"strings"
)

// coded is every error with a stable code: Error, and the ledger's.
type coded interface {
	error
	Code() string
}

// PublicMessage is what a caller is told of err, whose first coded error
// says what happened: that error's message with the detail wrapped after
// it (fmt.Errorf("%w: detail", ErrX)), prefixed by the field at fault,
// which is also returned as param. Context wrapped around it on the way up
// (fmt.Errorf("confirm %s: %w", id, err)) is for the logs and is never
// told: it names internal steps and objects. An error whose detail speaks
// in internal names (it has Internal() true: the ledger's account codes,
// which hold the host's users' ids, and transfer ids) gives only its own
// message, unless the caller is one of the platform's operators. ok is
// false when err has no code (a fault: tell the caller nothing of it).
//
// Every place that shows errors to callers (the API, the console) uses it,
// so what one shows the other does too.
func PublicMessage(err error, operator bool) (msg, param string, ok bool) {
	var c coded
	if !errors.As(err, &c) {
		return "", "", false
	}
	var in interface{ Internal() bool }
	hide := !operator && errors.As(c, &in) && in.Internal()
	msg = c.Error()
	found := false
	for e := err; e != nil && !found; e = errors.Unwrap(e) {
		if p, isParam := e.(interface{ Param() string }); isParam && param == "" {
			// The fields of hidden errors are internal too (postings[0]);
			// a domain package's own field is the caller's.
			if _, own := e.(*FieldError); own || !hide {
				param = p.Param()
			}
		}
		if strings.HasPrefix(e.Error(), c.Error()) {
			found = true
			if !hide {
				msg = e.Error()
			}
		}
	}
	if param != "" {
		msg = param + ": " + msg
	}
	return msg, param, true
}
