package emailotp

import (
	"net/http"
	"strings"

	"go.uber.org/zap"
)

// signInLog writes what guests' requests do: the operator's log lines and
// the audit stream's sign-in steps, with the guest's address masked where
// the operator asks (mask_addresses) and never a code or a cookie.
type signInLog struct {
	*zap.Logger
	audit *zap.Logger // http.handlers.email_otp.audit
	mask  bool
}

func newSignInLog(logger *zap.Logger, mask bool) signInLog {
	return signInLog{Logger: logger, audit: logger.Named("audit"), mask: mask}
}

// fields are the fields of every line about a guest's request.
func (l signInLog) fields(r *http.Request, t tenant, email string, extra ...zap.Field) []zap.Field {
	if l.mask {
		email = maskAddress(email)
	}
	return append([]zap.Field{
		zap.String("tenant", t.ID),
		zap.String("email", email),
		zap.String("client_ip", clientIP(r)),
	}, extra...)
}

// step records one step of a sign-in on a guest's request (recordStep).
func (l signInLog) step(r *http.Request, t tenant, name, reason, email string) {
	recordStep(l.audit, t.Key, email, name, reason, l.fields(r, t, email)...)
}

// maskAddress keeps an address's first character and its domain.
func maskAddress(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 1 {
		return addr
	}
	return addr[:1] + "***" + addr[at:]
}
