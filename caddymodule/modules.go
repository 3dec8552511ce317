package emailotp

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/caddyserver/caddy/v2"
)

// loadedModules are a gateway's mailer and store as Caddy loaded them, with
// the JSON that configured them: that names the delivery queue and journal
// they share with other gateways, and Caddy clears it while loading.
type loadedModules struct {
	mailer                Mailer
	store                 Store // timed (storetiming.go) unless it is the memory store
	storeModule           any   // the store as loaded: a journal, a change feed, a Ping?
	mailerName, storeName string
	mailerJSON, storeJSON json.RawMessage
}

// loadModules loads the configured mailer and store, or dev and memory.
func (g *Gateway) loadModules(ctx caddy.Context) (loadedModules, error) {
	if g.MailerRaw == nil {
		g.MailerRaw = json.RawMessage(`{"module":"dev"}`)
	}
	if g.StoreRaw == nil {
		g.StoreRaw = json.RawMessage(`{"module":"memory"}`)
	}
	mods := loadedModules{mailerJSON: slices.Clone(g.MailerRaw), storeJSON: slices.Clone(g.StoreRaw)}
	mods.mailerName, mods.storeName = moduleName(mods.mailerJSON), moduleName(mods.storeJSON)
	m, err := ctx.LoadModule(g, "MailerRaw")
	if err != nil {
		return mods, fmt.Errorf("mailer: %w", err)
	}
	s, err := ctx.LoadModule(g, "StoreRaw")
	if err != nil {
		return mods, fmt.Errorf("store: %w", err)
	}
	mods.mailer, mods.store, mods.storeModule = m.(Mailer), s.(Store), s
	if mods.storeName != memoryStoreKey {
		mods.store = newTimedStore(mods.store, mods.storeName)
	}
	return mods, nil
}

// moduleName is the "module" field of a module's JSON, e.g. "smtp".
func moduleName(raw json.RawMessage) string {
	var m struct {
		Module string `json:"module"`
	}
	_ = json.Unmarshal(raw, &m)
	return m.Module
}
