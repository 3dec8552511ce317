package emailotp

import (
	"net/http"
	"slices"
	"time"

	"github.com/otpgate/caddy-email-otp/flow"
)

// The device marker: a long-lived, HttpOnly cookie of each tenant that names
// the addresses which signed in with this browser before. It proves nothing
// about identity and opens nothing; it only gives the owner's browser limits
// of its own, so a stranger who knows the address can't keep its owner out
// (see flow.SendRequest.Devices). Signing out keeps it. Only the gateway's
// endpoints read it: its Path is the endpoints' prefix, so it never rides
// along on requests to the backend.
const (
	deviceCookie   = "email_otp_device"
	deviceLifetime = 180 * 24 * time.Hour
	maxDeviceTags  = 5
)

// deviceMarker is the marker's sealed content.
type deviceMarker struct {
	ID   string   `json:"i"`
	Tags []string `json:"t"` // identity tags, the most recent first
	// Passkeys are the identity tags that made a passkey in this browser,
	// and NotNowUntil when the passkey offer may come again after the
	// guest said "not now" (Unix seconds): the offer is made to a browser,
	// not an address.
	Passkeys    []string `json:"p,omitempty"`
	NotNowUntil int64    `json:"o,omitempty"`
}

// passkeyOfferPause is how long "not now" to a passkey holds.
const passkeyOfferPause = 30 * 24 * time.Hour

// deviceMarkers reads and writes the device marker.
type deviceMarkers struct {
	sealer *flow.Sealer
	now    func() time.Time
}

// load returns every marker of t the request carries that opens. A
// page on a sibling host can toss its own genuine marker under a parent
// Domain and a longer Path, which the browser sends first: taking the first
// would drop the owner back into the strangers' quota, so none hides another.
func (d deviceMarkers) load(r *http.Request, t tenant) []flow.Device {
	markers := d.markers(r, t)
	all := make([]flow.Device, len(markers))
	for i, m := range markers {
		all[i] = flow.Device{ID: m.ID, Tags: m.Tags}
	}
	return all
}

func (d deviceMarkers) markers(r *http.Request, t tenant) []deviceMarker {
	name := cookieNameAt(r, t.Base(), deviceCookie)
	var all []deviceMarker
	for v := range cookieValues(r, name) {
		var m deviceMarker
		if d.sealer.Open(sealName(name, t), v, &m) == nil && m.ID != "" {
			all = append(all, m)
		}
	}
	return all
}

// mine is this browser's marker for email: the one that knows the address
// already, else the first that opens, else a new one.
func (d deviceMarkers) mine(r *http.Request, t tenant, email string) deviceMarker {
	tag := flow.IdentityTag(t.Key, email)
	all := d.markers(r, t)
	if i := slices.IndexFunc(all, func(m deviceMarker) bool { return slices.Contains(m.Tags, tag) }); i >= 0 {
		return all[i]
	} else if len(all) > 0 {
		return all[0]
	}
	return deviceMarker{ID: flow.RandomToken()}
}

// remember adds the signed-in address to this browser's marker.
func (d deviceMarkers) remember(w http.ResponseWriter, r *http.Request, t tenant, email string) error {
	return d.update(w, r, t, email, func(*deviceMarker) {})
}

// update changes this browser's marker for email and puts the address first
// in it.
func (d deviceMarkers) update(w http.ResponseWriter, r *http.Request, t tenant, email string, change func(*deviceMarker)) error {
	tag := flow.IdentityTag(t.Key, email)
	m := d.mine(r, t, email)
	change(&m)
	m.Tags = append([]string{tag}, slices.DeleteFunc(slices.Clone(m.Tags), func(s string) bool { return s == tag })...)
	m.Tags = m.Tags[:min(len(m.Tags), maxDeviceTags)]
	m.Passkeys = m.Passkeys[max(len(m.Passkeys)-maxDeviceTags, 0):]
	name := cookieNameAt(r, t.Base(), deviceCookie)
	v, err := d.sealer.Seal(sealName(name, t), m)
	if err != nil {
		return err
	}
	setCookieAt(w, r, t.Base(), deviceCookie, v, d.now().Add(deviceLifetime))
	return nil
}

// offersPasskey reports whether this browser may be offered a passkey for
// email: it made none for the address, and no "not now" holds.
func (d deviceMarkers) offersPasskey(r *http.Request, t tenant, email string) bool {
	m := d.mine(r, t, email)
	return !slices.Contains(m.Passkeys, flow.IdentityTag(t.Key, email)) && d.now().Unix() >= m.NotNowUntil
}

// passkeyMade remembers that this browser holds a passkey of email.
func (d deviceMarkers) passkeyMade(w http.ResponseWriter, r *http.Request, t tenant, email string) error {
	tag := flow.IdentityTag(t.Key, email)
	return d.update(w, r, t, email, func(m *deviceMarker) {
		if !slices.Contains(m.Passkeys, tag) {
			m.Passkeys = append(m.Passkeys, tag)
		}
	})
}

// notNow holds the passkey offer back for passkeyOfferPause.
func (d deviceMarkers) notNow(w http.ResponseWriter, r *http.Request, t tenant, email string) error {
	return d.update(w, r, t, email, func(m *deviceMarker) {
		m.NotNowUntil = d.now().Add(passkeyOfferPause).Unix()
	})
}
