package emailotp

import (
	"encoding/json"
	"net/http"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/templates"
)

// statusJSON is the body of GET …/status: how this browser's code is
// getting on, as the enter-code page would say it. The page's script reads
// it so the page can change without reloading (and losing what the guest
// typed).
type statusJSON struct {
	// State is on_its_way, retrying, failed, or gone (no code to wait for).
	State   string `json:"state"`
	Message string `json:"message,omitempty"` // the page's sentence for State
}

func (g *Gateway) getStatus(w http.ResponseWriter, r *http.Request, t tenant) {
	if !jsonForOwnPages(w, r, t) {
		return
	}
	p, screen, err := g.codeScreen(r, t)
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"status unavailable"}` + "\n"))
		return
	}
	out := statusJSON{State: "gone"}
	if screen.Step == flow.StepEnterCode {
		view, words := screen.Challenge.Delivery.View(), g.pages.words(r)
		out = statusJSON{State: string(view), Message: words.Say(deliveryWords[view], templates.Vars{
			"Email": p.Email, "Tenant": g.pages.tenantName(t.Key, g.pages.words(r)), "Count": g.service.CodeLength(),
			"Duration": words.Duration(g.service.CodeTTL()),
		})}
	}
	_ = json.NewEncoder(w).Encode(out)
}

// deliveryWords are the sentences of the delivery states, as the
// enter-code page says them.
var deliveryWords = map[flow.DeliveryView]templates.Message{
	flow.ViewOnItsWay: templates.VerifyOnItsWay,
	flow.ViewRetrying: templates.VerifyRetrying,
	flow.ViewFailed:   templates.VerifyFailed,
}
