package emailotp

import (
	"encoding/base64"
	"errors"
	"net/http"
	"time"

	"github.com/otpgate/caddy-email-otp/flow/directory"
)

// guestView is a guest as the admin API shows it: the record, with its
// passkeys summed up (what an operator needs to tell them apart and delete
// one) instead of their keys and the user handle.
type guestView struct {
	directory.Guest
	PasskeyHandle []byte        `json:"passkey_handle,omitempty"` // never set: hides the record's
	Passkeys      []passkeyView `json:"passkeys,omitempty"`
}

// passkeyView is one passkey in the admin API.
type passkeyView struct {
	ID        string     `json:"id"`     // base64url, as the delete operation takes it
	Device    string     `json:"device"` // "Chrome on Android"
	CreatedAt time.Time  `json:"created_at"`
	LastUsed  *time.Time `json:"last_used,omitempty"`
	Synced    bool       `json:"synced"` // backed up by its provider (a synced passkey), not bound to one device
}

func viewOf(g directory.Guest) guestView {
	v := guestView{Guest: g, Passkeys: make([]passkeyView, len(g.Passkeys))}
	for i, pk := range g.Passkeys {
		v.Passkeys[i] = passkeyView{
			ID: base64.RawURLEncoding.EncodeToString(pk.ID), Device: pk.Device,
			CreatedAt: pk.CreatedAt, LastUsed: pk.LastUsed, Synced: pk.BackupState,
		}
	}
	return v
}

func viewsOf(guests []directory.Guest) []guestView {
	views := make([]guestView, len(guests))
	for i, g := range guests {
		views[i] = viewOf(g)
	}
	return views
}

// listPasskeys answers GET …/guests/{tenant}/{email}/passkeys.
func (a *AdminAPI) listPasskeys(w http.ResponseWriter, r *http.Request) error {
	g, err := a.guestRecord(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, viewOf(g).Passkeys)
}

// deletePasskey answers DELETE …/guests/{tenant}/{email}/passkeys/{id}: the
// passkey signs in no more, on every node at its next sign-in.
func (a *AdminAPI) deletePasskey(w http.ResponseWriter, r *http.Request) error {
	tenant, email, err := guestOf(r)
	if err != nil {
		return err
	}
	id, err := base64.RawURLEncoding.DecodeString(r.PathValue("id"))
	if err != nil || len(id) == 0 {
		return apiError(http.StatusBadRequest, "passkey id %q: use the id the passkeys list shows (base64url)", r.PathValue("id"))
	}
	g, err := a.directory(tenant).DeletePasskey(r.Context(), tenant, email, id, time.Now())
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return apiError(http.StatusNotFound, "%s is not a guest of %s", email, tenant)
	case errors.Is(err, directory.ErrNoPasskey):
		return apiError(http.StatusNotFound, "%s has no passkey %s in %s", email, r.PathValue("id"), tenant)
	case err != nil:
		return apiError(http.StatusInternalServerError, "deleting the passkey: %v", err)
	}
	a.changed(r, "guest passkey deleted", "passkey_deleted", tenant, email)
	return writeJSON(w, http.StatusOK, viewOf(g))
}
