package emailotp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/otpgate/caddy-email-otp/flow/directory"
)

// invitation is one guest to invite, as the admin API and the console ask.
type invitation struct {
	Tenant, Email string
	directory.Invitation
	// Link is the shared resource the email opens (http(s) URL of a page
	// of the tenant); needed when Send.
	Link     string
	Send     bool
	Language string // of the email; "" is English
}

// The ways an invitation fails, which the admin API and the console answer
// differently from a storage failure.
var (
	errInviteLink  = errors.New("the link is not a page of the tenant")
	errInviteQueue = errors.New("the invitation email could not be queued; nothing was changed, try again")
)

// invited is the outcome of an invitation.
type invited struct {
	Guest   directory.Guest
	Created bool   // the guest is new to the directory
	Link    string // the sign-in link the email carries
}

// invite records an invitation and queues its email; when the email can't
// be queued the directory goes back to what it was, so no invitation is
// kept that nobody was told of. dir is the directory of the gateway that
// serves the tenant; logger gets the admin line and audit the "invited"
// step, with who (the console's admin) beside the request's remote address.
func invite(ctx context.Context, dir *directory.Directory, logger, audit *zap.Logger, inv invitation, remote string, who ...zap.Field) (invited, error) {
	var out invited
	var gw *Gateway
	if inv.Send || inv.Link != "" {
		var err error
		if gw, out.Link, err = invitationLink(inv.Link, inv.Tenant, inv.Email); err != nil {
			return out, fmt.Errorf("%w: %v", errInviteLink, err)
		}
	}
	g, created, undo, err := dir.Invite(ctx, inv.Tenant, inv.Email, inv.Invitation, time.Now())
	if err != nil {
		return out, fmt.Errorf("writing the guest: %w", err)
	}
	if inv.Send {
		if err := gw.mail.invite(ctx, g, out.Link, inv.Language); err != nil {
			_ = undo(ctx)
			return out, fmt.Errorf("%w (%v)", errInviteQueue, err)
		}
	}
	if !created {
		announceGuestChange(ctx, logger, inv.Tenant, inv.Email) // e.g. fewer paths than before
	}
	fields := append([]zap.Field{zap.String("tenant", inv.Tenant), zap.String("email", inv.Email),
		zap.String("invited_by", inv.InvitedBy), zap.Bool("email_sent", inv.Send), zap.String("admin_remote", remote)}, who...)
	logger.Info("guest invited", fields...)
	id := directory.TenantName(inv.Tenant)
	fields[0] = zap.String("tenant", id)
	recordStep(audit, inv.Tenant, inv.Email, "invited", "", fields...)
	out.Guest, out.Created = g, created
	return out, nil
}
