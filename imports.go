// Package caddyemailotp plugs email one-time-passcode sign-in into Caddy:
//
//	xcaddy build --with github.com/otpgate/caddy-email-otp
//
// The module itself is package emailotp in caddymodule/; this package only
// imports it.
package caddyemailotp

import (
	_ "github.com/otpgate/caddy-email-otp/caddymodule"
)
