// Package flow is the domain of the email one-time-passcode gateway: tenants,
// the sign-in policy, pending challenges (codes), sessions, and the
// send / verify / check state machine that ties them together.
//
// It knows nothing of HTTP or Caddy: the adapter in caddymodule translates
// requests into calls on Service and results into pages and headers. Storage and
// mail delivery are behind the Store and Mailer interfaces, with implementations
// in the subpackages memstore, devmail and smtpmail.
package flow
