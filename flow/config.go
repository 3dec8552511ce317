package flow

import (
	"errors"
	"fmt"
	"time"

	"github.com/otpgate/caddy-email-otp/flow/directory"
)

// Config is what a Service needs. Durations and counts are validated by New.
type Config struct {
	CodeTTL     time.Duration
	SessionTTL  time.Duration
	CodeLength  int
	MaxAttempts int
	Policy      Policy
	// TenantPolicies replace Policy for the tenants (keys) they name: the
	// console's tenant admits its admins alone.
	TenantPolicies map[string]Policy
	Keys           *Keys
	Store          Store
	Dispatcher     Dispatcher
	Compose        Composer
	Clock          Clock // default SystemClock
	// Guests is the guest directory: invitations admit, revocations and
	// deletions end sessions, sign-ins are recorded. Required.
	Guests *directory.Directory
	// Consent asks a guest to agree before their first redemption.
	Consent bool
	// Limits bound how often codes are sent and guessed.
	Limits Limits
	// RevealDenied answers ErrNotPermitted for addresses that may not sign
	// in, instead of the decoy that makes them look like any other.
	RevealDenied bool
}

// Service runs the sign-in state machine for one gateway configuration.
type Service struct {
	cfg     Config
	codeKey []byte
}

// CheckCodeLength says whether a code of n digits is allowed: at least the
// six NIST SP 800-63B asks for, at most what a guest can copy by eye.
func CheckCodeLength(n int) error {
	if n < 6 || n > 12 {
		return errors.New("use 6 to 12 digits (NIST SP 800-63B asks for at least 6)")
	}
	return nil
}

// CheckMaxAttempts says whether n wrong tries per code is allowed.
func CheckMaxAttempts(n int) error {
	if n < 1 || n > 100 {
		return errors.New("use 1 to 100")
	}
	return nil
}

// New checks cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	lengthErr, attemptsErr := CheckCodeLength(cfg.CodeLength), CheckMaxAttempts(cfg.MaxAttempts)
	switch {
	case cfg.CodeTTL <= 0:
		return nil, errors.New("code TTL must be positive")
	case cfg.SessionTTL <= 0:
		return nil, errors.New("session TTL must be positive")
	case lengthErr != nil:
		return nil, fmt.Errorf("code length %d: %w", cfg.CodeLength, lengthErr)
	case attemptsErr != nil:
		return nil, fmt.Errorf("max attempts %d: %w", cfg.MaxAttempts, attemptsErr)
	case cfg.Keys == nil || cfg.Store == nil || cfg.Dispatcher == nil || cfg.Compose == nil || cfg.Guests == nil:
		return nil, errors.New("keys, store, dispatcher, composer and guest directory are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	return &Service{cfg: cfg, codeKey: cfg.Keys.MAC("code")}, nil
}

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.cfg.Clock.Now() }

// SessionTTL is how long a new session lasts.
func (s *Service) SessionTTL() time.Duration { return s.cfg.SessionTTL }

// CodeLength is the number of digits in a code.
func (s *Service) CodeLength() int { return s.cfg.CodeLength }

// CodeTTL is how long a code works.
func (s *Service) CodeTTL() time.Duration { return s.cfg.CodeTTL }
