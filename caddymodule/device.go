package caddymodule

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
// (see flow.SendRequest.KnownTags). Signing out keeps it. Only the gateway's
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
}

// loadDevice returns this browser's marker for t, or an empty one.
func (g *Gateway) loadDevice(r *http.Request, t tenant) deviceMarker {
	name := cookieNameAt(r, t.Base(), deviceCookie)
	for v := range cookieValues(r, name) {
		var m deviceMarker
		if g.device.Open(sealName(name, t), v, &m) == nil && m.ID != "" {
			return m
		}
	}
	return deviceMarker{}
}

// rememberDevice adds the signed-in address to this browser's marker.
func (g *Gateway) rememberDevice(w http.ResponseWriter, r *http.Request, t tenant, email string) error {
	m := g.loadDevice(r, t)
	if m.ID == "" {
		m.ID = flow.RandomToken()
	}
	tag := flow.IdentityTag(t.ID, email)
	m.Tags = append([]string{tag}, slices.DeleteFunc(m.Tags, func(s string) bool { return s == tag })...)
	m.Tags = m.Tags[:min(len(m.Tags), maxDeviceTags)]
	name := cookieNameAt(r, t.Base(), deviceCookie)
	v, err := g.device.Seal(sealName(name, t), m)
	if err != nil {
		return err
	}
	g.setCookieAt(w, r, t.Base(), deviceCookie, v, g.service.Now().Add(deviceLifetime))
	return nil
}
