// Package flow is the domain of the email one-time-passcode gateway: tenants,
// the sign-in policy, pending challenges (codes), sessions, and the
// send / verify / check state machine that ties them together.
//
// It knows nothing of HTTP or Caddy: the adapter in caddymodule translates
// requests into calls on Service and results into pages and headers. Storage,
// mail and time are behind the Store, Mailer, Dispatcher and Clock
// interfaces. The subpackages:
//
//	memstore     the default Store: bounded LRU caches in this process
//	redisstore   the Store for several nodes, on Redis
//	storetest    the contract every Store keeps, as tests
//	delivery     the queue between a send and the Mailer: retries, drain
//	devmail      a Mailer that keeps an outbox, for development
//	smtpmail     a Mailer for SMTP relays
//	mailgunmail  a Mailer for Mailgun's API
//	directory    the guest directory on Caddy's storage, and tenant keys
package flow
