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
	// Ceremony is the passkey ceremony this browser began (its id in the
	// store): only the browser that began one may finish it.
	Ceremony string `json:"pk,omitempty"`
	// Trip is the state of this browser's way to an identity provider:
	// only the browser that left may come back with it.
	Trip string `json:"tr,omitempty"`
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
// sign-in carries over but the address, which pre-fills the next sign-in,
// and the link the guest came for, which sign-out offers as the way back.
func (p Pending) SignedIn(email string) Pending {
	return Pending{Nonce: randomID(), Email: email, RD: p.RD}
}

// Notice says why a guest is back at the sign-in page.
type Notice string

const (
	NoticeNone    Notice = ""
	NoticeExpired Notice = "expired" // the code expired, was replaced or used
	NoticeLocked  Notice = "locked"  // the last try was wrong: the code is dead
)

// ParseNotice reads a notice carried in a link; anything else is none.
func ParseNotice(s string) Notice {
	switch n := Notice(s); n {
	case NoticeExpired, NoticeLocked:
		return n
	}
	return NoticeNone
}

// Step is where a browser's sign-in goes next.
type Step uint8

const (
	// StepEnterCode: the enter-code page, describing Screen.Challenge.
	StepEnterCode Step = iota + 1
	// StepConsent: the consent page; the verified session is held.
	StepConsent
	// StepSession: the code was right and needs no consent: issue the session.
	StepSession
	// StepSignIn: back to the sign-in page, with Screen.Notice.
	StepSignIn
)

// Screen is what a browser is shown next.
type Screen struct {
	Step   Step
	Notice Notice
	// Challenge is what the enter-code page describes: this browser's code,
	// or, for a send a limit held, one that looks sent.
	Challenge Challenge
}

// heldLookAlike is the challenge a held send shows: to the browser (and to
// anyone probing through it) a held send looks like a code on its way.
var heldLookAlike = Challenge{Delivery: DeliverySent, MaxAttempts: 1}

// CodeScreen decides the enter-code page for this browser, given its
// challenge as the store has it (found false when it is gone).
func (p Pending) CodeScreen(ch Challenge, found bool, now time.Time) Screen {
	switch {
	case found:
		return Screen{Step: StepEnterCode, Challenge: ch}
	case p.HeldAt(now):
		return Screen{Step: StepEnterCode, Challenge: heldLookAlike}
	case p.Challenge == "":
		return Screen{Step: StepSignIn} // never asked for a code here
	default:
		return Screen{Step: StepSignIn, Notice: NoticeExpired}
	}
}

// AfterVerify is the transition for a verify's result. A right code that
// needs consent holds the session in p; a wrong or malformed one stays on the
// enter-code page; a dead code sends the guest back to ask for a new one.
func (p *Pending) AfterVerify(res VerifyResult) Screen {
	switch res.Outcome {
	case Verified:
		if res.NeedsConsent {
			p.AwaitConsent(res.Session)
			return Screen{Step: StepConsent}
		}
		return Screen{Step: StepSession}
	case WrongCode, Malformed:
		return Screen{Step: StepEnterCode, Challenge: res.Challenge}
	case Locked:
		return Screen{Step: StepSignIn, Notice: NoticeLocked}
	default:
		return Screen{Step: StepSignIn, Notice: NoticeExpired}
	}
}
