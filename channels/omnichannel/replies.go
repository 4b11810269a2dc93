package omnichannel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/bfbridge/bfbridge/bridge"
)

// repliesKey is the name, among a conversation's stored values, of its reply links.
const repliesKey = "omnichannel/replies"

// maxReplyLinks bounds a conversation's reply links: the bot answers recent activities. A reply
// to an older one goes to the conversation (SendToConversation) instead.
const maxReplyLinks = 32

// replyLinksWindow bounds the log read that checks a link: the records past a link's After
// that resolving looks at.
const replyLinksWindow = 64

// replyLink says that the first customer record of the log after sequence number After is
// Omnichannel's activity OC. It is stored before the activity is handed to the Hub — the bot
// may answer before Hub.Receive returns the activity's bridge id — and inbound activities of a
// conversation are handed over one at a time, so the customer record that follows After is
// that activity.
type replyLink struct {
	After int64  `json:"a"`
	OC    string `json:"o"`
}

// noteInbound stores the reply link of an inbound activity about to be handed to the Hub, the
// log's last sequence number being before: one store write, none when the activity was seen
// before (Omnichannel retrying). The caller holds the conversation's inbound lock.
func (c *Channel) noteInbound(ctx context.Context, convID, ocID string, before int64) error {
	if ocID == "" {
		return nil
	}
	links, err := c.replyLinks(ctx, convID)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(links, func(l replyLink) bool { return l.OC == ocID }) {
		return nil
	}
	links = append(links, replyLink{After: before, OC: ocID})
	if n := len(links); n > maxReplyLinks {
		links = links[n-maxReplyLinks:]
	}
	b, err := json.Marshal(links)
	if err != nil {
		return err
	}
	if err := c.hub.PutValue(ctx, convID, repliesKey, b); err != nil {
		return fmt.Errorf("store reply link: %w", err)
	}
	c.replies.put(convID, string(b))
	return nil
}

// replyLinks returns the conversation's reply links, oldest first, from the cache or the store.
func (c *Channel) replyLinks(ctx context.Context, convID string) ([]replyLink, error) {
	v, ok := c.replies.get(convID)
	if !ok {
		b, err := c.hub.Value(ctx, convID, repliesKey)
		switch {
		case errors.Is(err, bridge.ErrNotFound):
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("read reply links: %w", err)
		}
		v = string(b)
		c.replies.put(convID, v)
	}
	var links []replyLink
	if err := json.Unmarshal([]byte(v), &links); err != nil {
		return nil, fmt.Errorf("decode reply links: %w", err)
	}
	return links, nil
}

// replyTarget returns Omnichannel's id of the activity a bridge activity id names, when it is
// one of Omnichannel's that the conversation's reply links still hold; "" otherwise (the reply
// is then sent to the conversation). The record must be a customer's, and the first customer
// record after its link's After.
func (c *Channel) replyTarget(ctx context.Context, convID, bridgeID string) string {
	if bridgeID == "" {
		return ""
	}
	if id, ok := c.resolved.get(bridgeID); ok {
		return id
	}
	seqText, found := strings.CutPrefix(bridgeID, convID+"|")
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if !found || err != nil {
		return ""
	}
	links, err := c.replyLinks(ctx, convID)
	if err != nil {
		c.log.Warn().Err(err).Str("conv_id", convID).Msg("reply links not read; replying to the conversation")
		return ""
	}
	i := len(links) - 1 // the last link before seq: links are in the log's order
	for i >= 0 && links[i].After >= seq {
		i--
	}
	if i < 0 || seq-links[i].After > replyLinksWindow {
		return ""
	}
	recs, err := c.hub.Since(ctx, convID, links[i].After, int(seq-links[i].After))
	if err != nil {
		return ""
	}
	for _, r := range recs {
		if r.From == bridge.RoleCustomer {
			if r.Seq != seq {
				return "" // the link's activity is another record
			}
			c.resolved.put(bridgeID, links[i].OC)
			return links[i].OC
		}
	}
	return ""
}
