package emailotp

import (
	"time"

	"go.uber.org/zap"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/flow/directory"
	"github.com/otpgate/caddy-email-otp/internal/mail/delivery"
)

// mailerAnswer is how the mailer last fared.
type mailerAnswer struct {
	Result string    `json:"result"` // delivered, retrying or failed
	At     time.Time `json:"at"`
	Error  string    `json:"error,omitempty"`
}

// reportDelivery logs one line per delivery result and counts every event.
// Decoys are counted with the real messages, so the metrics, like the pages,
// do not tell allowed from denied addresses; they are not logged.
func reportDelivery(logger *zap.Logger, mailer string, mask bool, r delivery.Report) {
	event := r.Event.String()
	tenantName := tenantLabel(directory.TenantName(r.Envelope.Tenant))
	mailEvents.WithLabelValues(mailer, tenantName, event).Inc()
	switch r.Event {
	case delivery.Queued:
		queueDepth.Inc()
	case delivery.Delivered, delivery.Failed:
		queueDepth.Dec()
	}
	if r.Took > 0 {
		result := "ok"
		if r.Err != nil {
			result = "error"
		}
		mailSeconds.WithLabelValues(mailer, result).Observe(r.Took.Seconds())
	}
	if r.StoreErr != nil {
		logger.Error("could not record the delivery state on the challenge",
			zap.String("tenant", r.Envelope.Tenant), zap.String("event", event), zap.Error(r.StoreErr))
	}
	if r.Envelope.Decoy || r.Event == delivery.Queued {
		return
	}
	to := r.Envelope.Message.To
	if mask {
		to = maskAddress(to)
	}
	fields := []zap.Field{
		zap.String("tenant", r.Envelope.Tenant),
		zap.String("email", to),
		zap.String("mailer", mailer),
		zap.Int("attempt", r.Attempt),
	}
	// A real message's end is a step of the sign-in: the funnel and the
	// audit log hear of it.
	step := func(name string) {
		id := directory.TenantName(r.Envelope.Tenant)
		recordStep(logger.Named("audit"), r.Envelope.Tenant, to, name, "", zap.String("tenant", id), zap.String("email", to))
	}
	switch r.Event {
	case delivery.Delivered:
		logger.Info("code email delivered", fields...)
		step("delivered")
	case delivery.Retrying:
		logger.Warn("code email not delivered; retrying", append(fields, zap.Duration("retry_in", r.RetryIn), zap.Error(r.Err))...)
	case delivery.Failed:
		logger.Error("code email not delivered; giving up", append(fields, zap.Bool("permanent", flow.IsPermanent(r.Err)), zap.Error(r.Err))...)
		step("delivery_failed")
	}
}

// remember keeps the mailer's answer to a real message (decoys never reach
// the mailer).
func (q *mailQueue) remember(r delivery.Report) {
	if r.Envelope.Decoy || r.Event == delivery.Queued {
		return
	}
	a := &mailerAnswer{Result: r.Event.String(), At: time.Now().UTC()}
	if r.Err != nil {
		a.Error = r.Err.Error()
	}
	q.last.Store(a)
	recentMail.add(r.Envelope.Tenant, r.Envelope.Message.To, *a)
}
