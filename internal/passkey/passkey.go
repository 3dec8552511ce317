// Package passkey is the gateway's WebAuthn relying party: it makes the
// options a browser needs to create or use a passkey, and checks what the
// browser answers. github.com/go-webauthn/webauthn does the standard's
// checks and the cryptography; this package fixes the choices (discoverable
// credentials, attestation none, user verification preferred, ES256 and
// RS256) and speaks in the guest directory's terms.
package passkey

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/otpgate/caddy-email-otp/flow/directory"
)

// Lifetime of a ceremony: a begun passkey sign-in or enrolment must finish
// within it.
const Lifetime = 5 * time.Minute

// Site is where a ceremony runs: the browser's origin, whose host is the RP
// ID, and the name the browser shows beside the passkey.
type Site struct {
	Origin string // "https://docs.example.com"
	Name   string // the tenant's display name
}

// RPID is the site's host: the passkeys' scope in the browser. Path tenants
// share their site's host, so the browser may offer a passkey of one to
// another; the gateway refuses it (the handle is unknown in that tenant).
func (s Site) RPID() string {
	u, err := url.Parse(s.Origin)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

func (s Site) relyingParty() (*webauthn.WebAuthn, error) {
	return webauthn.New(&webauthn.Config{
		RPID:                  s.RPID(),
		RPDisplayName:         s.Name,
		RPOrigins:             []string{s.Origin},
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementRequired,
			UserVerification: protocol.VerificationPreferred,
		},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Enforce: true, Timeout: Lifetime, TimeoutUVD: Lifetime},
			Registration: webauthn.TimeoutConfig{Enforce: true, Timeout: Lifetime, TimeoutUVD: Lifetime},
		},
	})
}

// algorithms are the signatures a passkey may use.
var algorithms = []protocol.CredentialParameter{
	{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgES256},
	{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgRS256},
}

// Account is a guest as the relying party sees them.
type Account struct {
	Handle   []byte // the user handle: random, see directory.Directory.PasskeyHandle
	Email    string
	Label    string // what the browser shows under the passkey: the address and the tenant's name
	Passkeys []directory.Passkey
}

// AccountOf is guest's account, labelled for the tenant named tenantName.
func AccountOf(g directory.Guest, tenantName string) Account {
	label := g.Email
	if tenantName != "" {
		label += " (" + tenantName + ")"
	}
	return Account{Handle: g.PasskeyHandle, Email: g.Email, Label: label, Passkeys: g.Passkeys}
}

func (a Account) WebAuthnID() []byte          { return a.Handle }
func (a Account) WebAuthnName() string        { return a.Email }
func (a Account) WebAuthnDisplayName() string { return a.Label }

func (a Account) WebAuthnCredentials() []webauthn.Credential {
	creds := make([]webauthn.Credential, len(a.Passkeys))
	for i, pk := range a.Passkeys {
		transports := make([]protocol.AuthenticatorTransport, len(pk.Transports))
		for j, t := range pk.Transports {
			transports[j] = protocol.AuthenticatorTransport(t)
		}
		creds[i] = webauthn.Credential{
			ID:              pk.ID,
			PublicKey:       pk.PublicKey,
			AttestationType: "none",
			Transport:       transports,
			Flags: webauthn.CredentialFlags{
				UserPresent: true, UserVerified: pk.UserVerified,
				BackupEligible: pk.BackupEligible, BackupState: pk.BackupState,
			},
			Authenticator: webauthn.Authenticator{AAGUID: pk.AAGUID, SignCount: pk.SignCount},
		}
	}
	return creds
}

// Ceremony is a begun sign-in or enrolment, kept in the store until it
// finishes: what it is for, and the library's state (the challenge).
type Ceremony struct {
	Enrol   bool                 `json:"enrol,omitempty"`
	Tenant  string               `json:"tenant"`
	Email   string               `json:"email,omitempty"` // enrolment: whose passkey
	Session webauthn.SessionData `json:"session"`
}

// Marshal is the ceremony as the store keeps it.
func (c Ceremony) Marshal() ([]byte, error) { return json.Marshal(c) }

// ParseCeremony reads what Marshal made.
func ParseCeremony(data []byte) (Ceremony, error) {
	var c Ceremony
	err := json.Unmarshal(data, &c)
	return c, err
}

// BeginEnrolment returns the options of navigator.credentials.create (as
// JSON) for a new passkey of acct, and the ceremony to keep. The guest's
// passkeys are excluded, so an authenticator that holds one says so instead
// of making a second.
func BeginEnrolment(site Site, tenant string, acct Account) ([]byte, Ceremony, error) {
	rp, err := site.relyingParty()
	if err != nil {
		return nil, Ceremony{}, err
	}
	exclude := make([]protocol.CredentialDescriptor, len(acct.Passkeys))
	for i, pk := range acct.Passkeys {
		exclude[i] = protocol.CredentialDescriptor{Type: protocol.PublicKeyCredentialType, CredentialID: pk.ID}
	}
	options, session, err := rp.BeginRegistration(acct,
		webauthn.WithCredentialParameters(algorithms), webauthn.WithExclusions(exclude))
	if err != nil {
		return nil, Ceremony{}, err
	}
	body, err := json.Marshal(options)
	return body, Ceremony{Enrol: true, Tenant: tenant, Email: acct.Email, Session: *session}, err
}

// ErrRefused is what the browser's answer failed: its wrapped error says
// which check, for the log; the guest hears only that it did not work.
var ErrRefused = errors.New("the passkey was refused")

func refused(err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.DevInfo != "" {
		return fmt.Errorf("%w: %s: %s", ErrRefused, pe.Details, pe.DevInfo)
	} else if errors.As(err, &pe) {
		return fmt.Errorf("%w: %s", ErrRefused, pe.Details)
	}
	return fmt.Errorf("%w: %v", ErrRefused, err)
}

// FinishEnrolment checks the browser's answer to BeginEnrolment's options
// and returns the new passkey, named device.
func FinishEnrolment(site Site, acct Account, c Ceremony, answer []byte, device string, now time.Time) (directory.Passkey, error) {
	rp, err := site.relyingParty()
	if err != nil {
		return directory.Passkey{}, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(answer)
	if err != nil {
		return directory.Passkey{}, refused(err)
	}
	cred, err := rp.CreateCredential(acct, c.Session, parsed)
	if err != nil {
		return directory.Passkey{}, refused(err)
	}
	transports := make([]string, len(cred.Transport))
	for i, t := range cred.Transport {
		transports[i] = string(t)
	}
	return directory.Passkey{
		ID: cred.ID, PublicKey: cred.PublicKey, SignCount: cred.Authenticator.SignCount,
		BackupEligible: cred.Flags.BackupEligible, BackupState: cred.Flags.BackupState, UserVerified: cred.Flags.UserVerified,
		AAGUID: cred.Authenticator.AAGUID, Transports: transports, Device: device, CreatedAt: now.UTC(),
	}, nil
}

// BeginSignIn returns the options of navigator.credentials.get (as JSON)
// for any passkey of the site (discoverable: no address is asked), and the
// ceremony to keep.
func BeginSignIn(site Site, tenant string) ([]byte, Ceremony, error) {
	rp, err := site.relyingParty()
	if err != nil {
		return nil, Ceremony{}, err
	}
	options, session, err := rp.BeginDiscoverableLogin()
	if err != nil {
		return nil, Ceremony{}, err
	}
	body, err := json.Marshal(options)
	return body, Ceremony{Tenant: tenant, Session: *session}, err
}

// ErrUnknownPasskey: the answer is from a passkey this tenant does not
// know (another tenant's on the same host, or one deleted).
var ErrUnknownPasskey = errors.New("this passkey is not known here")

// FinishSignIn checks the browser's answer to BeginSignIn's options. owner
// finds the account of a user handle (directory.ErrNotFound when there is
// none). It returns whose passkey signed and what to record of its use. A
// counter that went back is directory.ErrPasskeyCloned.
func FinishSignIn(site Site, c Ceremony, answer []byte, owner func(handle []byte) (Account, error)) (Account, directory.PasskeyUse, error) {
	rp, err := site.relyingParty()
	if err != nil {
		return Account{}, directory.PasskeyUse{}, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(answer)
	if err != nil {
		return Account{}, directory.PasskeyUse{}, refused(err)
	}
	var acct Account
	var lookupErr error
	_, cred, err := rp.ValidatePasskeyLogin(func(_, handle []byte) (webauthn.User, error) {
		acct, lookupErr = owner(handle)
		if lookupErr != nil {
			return nil, lookupErr
		}
		return acct, nil
	}, c.Session, parsed)
	switch {
	case errors.Is(lookupErr, directory.ErrNotFound):
		return Account{}, directory.PasskeyUse{}, ErrUnknownPasskey
	case lookupErr != nil:
		return acct, directory.PasskeyUse{}, lookupErr // whose passkey, for the log
	case err != nil:
		if _, ok := acct.passkey(parsed.RawID); acct.Handle != nil && !ok {
			return Account{}, directory.PasskeyUse{}, ErrUnknownPasskey
		}
		return Account{}, directory.PasskeyUse{}, refused(err)
	case cred.Authenticator.CloneWarning:
		return acct, directory.PasskeyUse{}, directory.ErrPasskeyCloned
	}
	return acct, directory.PasskeyUse{
		ID: cred.ID, SignCount: cred.Authenticator.SignCount,
		BackupState: cred.Flags.BackupState, UserVerified: cred.Flags.UserVerified,
	}, nil
}

func (a Account) passkey(id []byte) (directory.Passkey, bool) {
	return directory.Guest{Passkeys: a.Passkeys}.Passkey(id)
}
