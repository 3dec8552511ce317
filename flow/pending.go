package flow

import "time"

// Pending is one browser's sign-in in progress, from the sign-in page to
// the session: the adapter keeps it sealed in a pre-authentication cookie
// and never promotes it to a session. Its methods are the sign-in's
// transitions; what a page shows follows from its state.
type Pending struct {
	// Nonce binds this browser's forms (CSRF) and names its browser slot.
	Nonce string `json:"n"`
	// Challenge is the code this browser waits for; "" for none.
	Challenge string `json:"c,omitempty"`
	// Email is the address last asked for here (it pre-fills the sign-in
	// page after the session ends), RD the link to land on.
	Email string `json:"e,omitempty"`
	RD    string `json:"r,omitempty"`
	// Expires is when the cookie stops counting (Unix seconds).
	Expires int64 `json:"x"`
	// Held is a verified session waiting for the guest's consent.
	Held *Session `json:"h,omitempty"`
	// HeldUntil: a send was held by a limit about the address until then
	// (Unix seconds); the guest sees the enter-code page meanwhile.
	HeldUntil int64 `json:"hu,omitempty"`
}

// NewPending starts a sign-in in a browser that has none.
func NewPending() Pending { return Pending{Nonce: randomID()} }

// HeldAt reports whether a limit about the address holds this browser's
// sends at now.
func (p Pending) HeldAt(now time.Time) bool { return now.Unix() < p.HeldUntil }

// Waiting reports whether the browser has something to enter a code for: a
// challenge, or a held send (which looks like one from outside).
func (p Pending) Waiting(now time.Time) bool { return p.Challenge != "" || p.HeldAt(now) }

// Restart is the sign-in page shown again: the challenge and any session
// waiting for consent are abandoned; the nonce and the address stay.
func (p *Pending) Restart() { p.Challenge, p.Held = "", nil }

// Sent records a send's result for the link rd. A held send keeps the
// challenge this browser already waits for, if it was for the same
// address.
func (p *Pending) Sent(res SendResult, rd string) {
	if !res.Held.IsZero() {
		if p.Email != res.Email {
			p.Challenge = ""
		}
		p.Email, p.RD, p.HeldUntil = res.Email, rd, res.Held.Unix()
		return
	}
	p.HeldUntil = 0
	p.Challenge, p.Email, p.RD = res.Challenge.ID, res.Challenge.Email, rd
}

// AwaitConsent records a verified session that needs the guest's consent
// before it is issued: the code is used up.
func (p *Pending) AwaitConsent(s Session) { p.Challenge, p.Held = "", &s }

// Consenting returns the session waiting for consent, if there is one for
// tenant that has not expired at now.
func (p Pending) Consenting(tenant string, now time.Time) (Session, bool) {
	if p.Held == nil || p.Held.Tenant != tenant || now.Unix() >= p.Held.ExpiresAt {
		return Session{}, false
	}
	return *p.Held, true
}

// Decline drops the session waiting for consent: nothing was issued.
func (p *Pending) Decline() { p.Held = nil }

// SignedIn is the state after a session was issued: nothing from before
// sign-in carries over but the address, which pre-fills the next sign-in.
func (p Pending) SignedIn(email string) Pending { return Pending{Nonce: randomID(), Email: email} }
