#!/usr/bin/env bash
# Build, run and test caddy-email-otp.
#
#   ./xcaddy.sh run     build Caddy with this module, serve Caddyfile.example on :8080
#   ./xcaddy.sh build   build ./caddy (Caddy v2.11.9 + this checkout) with xcaddy
#   ./xcaddy.sh test    vet and run every test; fails if any test is skipped
#   ./xcaddy.sh adapt   print the JSON of Caddyfile.example
#   ./xcaddy.sh bench   measure the per-request cost (integration/bench/RESULTS.md)
#   ./xcaddy.sh bench storm   many guests signing in at once (same file)
set -euo pipefail
cd "$(dirname "$0")"

CADDY_VERSION=v2.11.9
XCADDY_VERSION=v0.4.5
MODULE=github.com/otpgate/caddy-email-otp
BIN="$PWD/.bin"

need_go() {
	command -v go >/dev/null || { echo "xcaddy.sh: Go is not installed (https://go.dev/doc/install; Go 1.26 or later)" >&2; exit 1; }
}

# xcaddy is built from the module proxy in a scratch module: `go install
# …@version` is refused by some proxies for tools, `go get -tool` is not.
ensure_xcaddy() {
	if [ -x "$BIN/xcaddy" ] && "$BIN/xcaddy" version 2>/dev/null | grep -q "$XCADDY_VERSION"; then
		return
	fi
	echo "xcaddy.sh: installing xcaddy $XCADDY_VERSION into .bin/" >&2
	local tmp
	tmp=$(mktemp -d)
	(
		cd "$tmp"
		go mod init xcaddy-tool >/dev/null 2>&1
		go get -tool "github.com/caddyserver/xcaddy/cmd/xcaddy@$XCADDY_VERSION" >/dev/null
		go build -o "$BIN/xcaddy" github.com/caddyserver/xcaddy/cmd/xcaddy
	)
	rm -rf "$tmp"
}

build() {
	need_go
	ensure_xcaddy
	# This checkout is not published: let "not found" from the proxy fall
	# through to the local replacement instead of trying the network.
	local proxy
	proxy=$(go env GOPROXY)
	proxy=${proxy%%[,|]*}
	if [ "$proxy" = "off" ] || [ "$proxy" = "direct" ]; then proxy=https://proxy.golang.org; fi
	GOPROXY="$proxy|off" "$BIN/xcaddy" build "$CADDY_VERSION" --with "$MODULE=$PWD" --output ./caddy
}

# ensure_test_deps installs what the tests start themselves (Chromium for the
# browser test, redis-server for the Redis store and two-node tests) with
# apt-get when this user may (root, or sudo without a password); otherwise it
# says in one line what to install, and the tests that need it fail.
ensure_test_deps() {
	local missing=() sudo=""
	command -v redis-server >/dev/null || missing+=(redis-server)
	command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null ||
		[ -n "${CHROMIUM:-}" ] || missing+=(chromium)
	[ ${#missing[@]} -eq 0 ] && return
	if [ "$(id -u)" != 0 ]; then
		if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
			sudo="sudo -n"
		else
			echo "xcaddy.sh: the tests need ${missing[*]}: install with 'sudo apt-get install ${missing[*]}' (the tests that need them will fail until then)" >&2
			return
		fi
	fi
	if ! command -v apt-get >/dev/null; then
		echo "xcaddy.sh: the tests need ${missing[*]}: install them with your package manager (the tests that need them will fail until then)" >&2
		return
	fi
	echo "xcaddy.sh: installing ${missing[*]} for the tests (apt-get)" >&2
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
		$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		echo "xcaddy.sh: could not install ${missing[*]}; the tests that need them will fail" >&2
}

run_tests() {
	need_go
	ensure_test_deps
	local log status
	log=$(mktemp "${TMPDIR:-/tmp}/email-otp-test.XXXXXX")
	echo "xcaddy.sh: go vet ./..." >&2
	go vet ./...
	unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
	if [ -n "$unformatted" ]; then
		echo "xcaddy.sh: gofmt would change: $unformatted" >&2
		exit 1
	fi
	echo "xcaddy.sh: go test -count=1 -v ./... (full log: $log)" >&2
	# Never -short and never -trimpath: both make caddytest skip every Caddy
	# test while go test still prints ok.
	set +e
	go test -count=1 -v ./... >"$log" 2>&1
	status=$?
	set -e
	grep -E '^(ok|FAIL|PASS|--- FAIL|--- SKIP|panic:)|^\s+[A-Za-z0-9_]+_test\.go:[0-9]+:' "$log" || true
	if [ "$status" -ne 0 ]; then
		echo "xcaddy.sh: tests failed; the last lines of the log:" >&2
		grep -v 'caddytest: redirecting the dialer' "$log" | tail -n 80 >&2
		exit "$status"
	fi
	if grep -q -- '--- SKIP' "$log"; then
		echo "xcaddy.sh: some tests were skipped (listed above); a skipped test hides a missing dependency" >&2
		exit 1
	fi
	echo "xcaddy.sh: benchmarks, once each, so they keep compiling and running" >&2
	go test -count=1 -run '^$' -bench . -benchtime 1x ./... >"$log.bench" 2>&1 || {
		cat "$log.bench" >&2
		exit 1
	}
	# Each fuzz target for a bounded number of inputs (FUZZTIME, default
	# 30000x: a few seconds each here); their seed corpora in testdata/fuzz run
	# with every go test above. A count, not a duration: Go 1.26's fuzzing
	# coordinator can report "context deadline exceeded" as a failure when a
	# duration ends while a busy worker is mid-input (go.dev/issue/75804,
	# fixed in Go 1.27); a count has no deadline to race.
	for target in flow:FuzzParseAddress flow:FuzzSealerOpen flow:FuzzOpenSession caddymodule:FuzzSafeRD caddymodule:FuzzResolvePathTenant internal/textcheck:FuzzHasControl internal/hygiene:FuzzRemoveFrom; do
		echo "xcaddy.sh: fuzzing ${target#*:} for ${FUZZTIME:-30000x}" >&2
		go test -run '^$' -fuzz "^${target#*:}\$" -fuzztime "${FUZZTIME:-30000x}" "./${target%%:*}" >"$log.fuzz" 2>&1 || {
			cat "$log.fuzz" >&2
			exit 1
		}
	done
	passed=$(grep -c -- '--- PASS' "$log" || true)
	echo "$passed passed, 0 failed"
}

case "${1:-run}" in
build) build ;;
run)
	build
	# The demo's identity provider (ada@idp.example signs in there); Caddy
	# runs without it too, and says so.
	go build -o .bin/demoidp ./integration/demoidp
	.bin/demoidp &
	idp=$!
	trap 'kill $idp 2>/dev/null || true' EXIT INT TERM
	for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/9998) 2>/dev/null && break; sleep 0.1; done
	./caddy run --config Caddyfile.example --adapter caddyfile
	;;
test) run_tests ;;
bench)
	case "${2:-}" in
	storm) exec integration/bench/storm.sh ;;
	"") exec integration/bench/run.sh ;;
	*) echo "usage: ./xcaddy.sh bench [storm]" >&2; exit 2 ;;
	esac
	;;
screenshots)
	# The pictures of the guest's pages (docs/guests.md) and of the console
	# (docs/console.md): the accessibility walks in Chromium save their main
	# states into docs/screenshots.
	ensure_test_deps
	rm -f docs/screenshots/*.png
	mkdir -p docs/screenshots
	SCREENSHOTS="$PWD/docs/screenshots" go test -count=1 -run '^(TestPagesAreAccessibleLightAndDark|TestConsoleInChromium)$' ./integration/
	ls docs/screenshots
	;;
adapt)
	build
	./caddy adapt --config Caddyfile.example --adapter caddyfile --pretty
	;;
*)
	echo "usage: ./xcaddy.sh [run|build|test|adapt|bench|screenshots]" >&2
	exit 2
	;;
esac
