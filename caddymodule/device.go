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
}

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
	name := cookieNameAt(r, t.Base(), deviceCookie)
	var all []flow.Device
	for v := range cookieValues(r, name) {
		var m deviceMarker
		if d.sealer.Open(sealName(name, t), v, &m) == nil && m.ID != "" {
			all = append(all, flow.Device{ID: m.ID, Tags: m.Tags})
		}
	}
	return all
}

// remember adds the signed-in address to this browser's marker: the
// one that knows the address already, else the first that opens, else a new
// one.
func (d deviceMarkers) remember(w http.ResponseWriter, r *http.Request, t tenant, email string) error {
	tag := flow.IdentityTag(t.Key, email)
	all := d.load(r, t)
	m := deviceMarker{ID: flow.RandomToken()}
	if i := slices.IndexFunc(all, func(d flow.Device) bool { return slices.Contains(d.Tags, tag) }); i >= 0 {
		m = deviceMarker{ID: all[i].ID, Tags: all[i].Tags}
	} else if len(all) > 0 {
		m = deviceMarker{ID: all[0].ID, Tags: all[0].Tags}
	}
	m.Tags = append([]string{tag}, slices.DeleteFunc(slices.Clone(m.Tags), func(s string) bool { return s == tag })...)
	m.Tags = m.Tags[:min(len(m.Tags), maxDeviceTags)]
	name := cookieNameAt(r, t.Base(), deviceCookie)
	v, err := d.sealer.Seal(sealName(name, t), m)
	if err != nil {
		return err
	}
	setCookieAt(w, r, t.Base(), deviceCookie, v, d.now().Add(deviceLifetime))
	return nil
}
