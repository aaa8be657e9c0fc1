package webhooks

import (
	"errors"

	"github.com/minipay/minipay"
)

// Errors a caller may branch on with errors.Is. Each is a minipay.Error, so
// the API answers it with its kind's status and its code.
var (
	// ErrInvalid: a parameter is malformed; the message and param say which.
	ErrInvalid = minipay.NewError(minipay.KindInvalid, "parameter_invalid", "invalid parameter")
	// ErrMissing: a required parameter is absent.
	ErrMissing = minipay.NewError(minipay.KindInvalid, "parameter_missing", "a required parameter is missing")
	// ErrURLInvalid: the endpoint URL is not an absolute http(s) URL with a host.
	ErrURLInvalid = minipay.NewError(minipay.KindInvalid, "url_invalid", "the url must be an absolute https URL with a host")
	// ErrURLInsecure: the URL is http while private addresses are not allowed
	// (production); use https.
	ErrURLInsecure = minipay.NewError(minipay.KindInvalid, "url_insecure", "webhook urls must use https")
	// ErrURLNotAllowed: the URL names a loopback, private, link-local,
	// multicast or metadata address. Addresses are checked again, after
	// name resolution, each time a delivery connects.
	ErrURLNotAllowed = minipay.NewError(minipay.KindInvalid, "url_not_allowed", "the url points at a private, loopback, link-local or metadata address")
	// ErrUnknownEventType: an event type that minipay does not send.
	ErrUnknownEventType = minipay.NewError(minipay.KindInvalid, "event_type_unknown", "no such event type")
	// ErrEndpointLimit: the app already has EndpointsPerAppMax endpoints;
	// delete one first.
	ErrEndpointLimit = minipay.NewError(minipay.KindUnprocessable, "webhook_endpoint_limit", "an app may have at most 16 webhook endpoints")
	// ErrEndpointNotFound: no such endpoint for this app (or it was deleted).
	ErrEndpointNotFound = minipay.NewError(minipay.KindNotFound, "webhook_endpoint_not_found", "no such webhook endpoint")
	// ErrEventNotFound: no such event for this app.
	ErrEventNotFound = minipay.NewError(minipay.KindNotFound, "event_not_found", "no such event")
	// ErrEndpointDisabled: a redelivery asked for a disabled endpoint;
	// enable it first.
	ErrEndpointDisabled = minipay.NewError(minipay.KindConflict, "webhook_endpoint_disabled", "the webhook endpoint is disabled")
	// ErrNoEndpoints: a redelivery found no enabled endpoint of the app
	// that subscribes to the event's type.
	ErrNoEndpoints = minipay.NewError(minipay.KindConflict, "no_webhook_endpoints", "no enabled webhook endpoint of this app receives this event")
	// ErrSecretUndecryptable: a stored signing secret cannot be decrypted,
	// because MINIPAY_SECRET changed or the row was altered. Deliveries to
	// the endpoint fail until its secret is rotated.
	ErrSecretUndecryptable = errors.New("webhooks: stored signing secret cannot be decrypted (has MINIPAY_SECRET changed?)")
	// ErrAddressRefused: a delivery was not sent because its URL resolved
	// to an address that is refused while private addresses are not
	// allowed. Recorded in the attempt log.
	ErrAddressRefused = errors.New("webhooks: address refused")
)
