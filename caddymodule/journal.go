package emailotp

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/otpgate/caddy-email-otp/flow"
	"github.com/otpgate/caddy-email-otp/internal/mail/delivery"
)

// journalStore is a store that can keep queued messages for every node
// (store redis): see redisstore's journal.
type journalStore interface {
	Keep(ctx context.Context, journal string, sealed []byte, until time.Time) (string, error)
	Renew(ctx context.Context, journal string, tickets []string, until time.Time) error
	Done(ctx context.Context, journal, ticket string) error
	Claim(ctx context.Context, journal string, now, until time.Time, max int) ([]string, [][]byte, error)
	JournalLen(ctx context.Context, journal string) (int64, error)
}

// sealedJournal is the delivery journal on a journalStore: messages hold
// codes, so they are sealed (encrypted and authenticated) with the
// gateway's keys before they leave the process.
type sealedJournal struct {
	store journalStore
	// name is shared by the queues that can deliver each other's
	// messages: the same mailer settings and the same keys.
	name   string
	sealer *flow.Sealer
	// challenges are read before a claimed message is sent: one whose code
	// was sent, used or replaced is dropped.
	challenges flow.Store
}

// journalRecord is what the journal keeps of an envelope.
type journalRecord struct {
	ChallengeID string       `json:"c"`
	Tenant      string       `json:"t"`
	Message     flow.Message `json:"m"`
	Decoy       bool         `json:"d,omitempty"`
}

const journalSealName = "journal"

// newSealedJournal is the journal on the gateway's store for its mailer's
// settings, or nil when the store keeps no journal (memory: a crash loses
// queued messages).
func newSealedJournal(mods loadedModules, keys *flow.Keys) *sealedJournal {
	store, ok := mods.storeModule.(journalStore)
	if !ok {
		return nil
	}
	return &sealedJournal{store: store, name: journalNameOf(mods.mailerJSON, keys), sealer: keys.RecordSealer("journal"), challenges: mods.store}
}

// journalNameOf names the journal of a mailer's settings under the gateway's
// keys: a digest of both, the same on every node that shares them, so a
// message is only ever claimed by a queue that sends through the same mailer
// and can open it. It reveals neither.
func journalNameOf(mailerJSON []byte, keys *flow.Keys) string {
	h := hmac.New(sha256.New, keys.MAC("journal name"))
	h.Write(mailerJSON)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

func (j *sealedJournal) keep(ctx context.Context, e flow.Envelope, until time.Time) (string, error) {
	sealed, err := j.sealer.Seal(journalSealName, journalRecord{e.ChallengeID, e.Tenant, e.Message, e.Decoy})
	if err != nil {
		return "", err
	}
	return j.store.Keep(ctx, j.name, []byte(sealed), until)
}

func (j *sealedJournal) renew(ctx context.Context, tickets []string, until time.Time) error {
	return j.store.Renew(ctx, j.name, tickets, until)
}

func (j *sealedJournal) done(ctx context.Context, ticket string) error {
	return j.store.Done(ctx, j.name, ticket)
}

func (j *sealedJournal) claim(ctx context.Context, now, until time.Time, max int) ([]delivery.Kept, error) {
	tickets, sealed, err := j.store.Claim(ctx, j.name, now, until, max)
	if err != nil {
		return nil, err
	}
	kept := make([]delivery.Kept, 0, len(tickets))
	for i, t := range tickets {
		var r journalRecord
		if j.sealer.Open(journalSealName, string(sealed[i]), &r) != nil {
			// The name covers the keys, so this is damage, not a
			// neighbour's message: nothing can send it.
			_ = j.store.Done(ctx, j.name, t)
			continue
		}
		kept = append(kept, delivery.Kept{Ticket: t, Envelope: flow.Envelope{ChallengeID: r.ChallengeID, Tenant: r.Tenant, Message: r.Message, Decoy: r.Decoy}})
	}
	return kept, nil
}

// stillWanted: a claimed message is sent only if its challenge is live and
// its code not yet known to be sent.
func (j *sealedJournal) stillWanted(ctx context.Context, e flow.Envelope) bool {
	ch, err := j.challenges.LoadChallenge(ctx, e.ChallengeID, time.Now())
	if err != nil {
		return !errors.Is(err, flow.ErrChallengeNotFound) // unsure: send rather than lose it
	}
	return ch.Delivery != flow.DeliverySent
}

// depth is how many messages the journal holds, for health.
func (j *sealedJournal) depth(ctx context.Context) (int64, error) {
	return j.store.JournalLen(ctx, j.name)
}
