package redisstore

import (
	"embed"

	"github.com/redis/go-redis/v9"
)

// The store's Lua scripts: each check-and-change is one script, so it is
// atomic on the server and one round trip (keep, done and claim run for
// every code email).
var (
	attempt  = script("attempt.lua")  // compare a code, count or delete
	delivery = script("delivery.lua") // record a challenge's delivery state
	cancel   = script("cancel.lua")   // delete a challenge if it is still that one
	count    = script("count.lua")    // a counter in its fixed window
	keep     = script("keep.lua")     // a journal message with its lease
	done     = script("done.lua")     // forget a journal message
	claim    = script("claim.lua")    // take the messages whose lease ran out
)

//go:embed *.lua
var scripts embed.FS

func script(name string) *redis.Script {
	src, err := scripts.ReadFile(name)
	if err != nil {
		panic("redisstore: " + err.Error()) // embedded at build time: only a typo gets here
	}
	return redis.NewScript(string(src))
}
