package omnichannel

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/bfbridge/bfbridge/activity"
)

// The 28 KB rule. Omnichannel takes messages of at most 28 KB, metadata and tags included
// (escalation.md §1: configure-bot-best-practices.md). Every activity the channel sends is
// measured as it is serialized on the wire, fully addressed, against Config.MaxMessageBytes:
//
//   - A bot message over the limit is split into several bridged messages. The text is cut at
//     the last whitespace that fits (the whitespace at the cut is dropped; a word longer than a
//     message is cut at a character boundary). Every part keeps the envelope (channelData,
//     entities, replyToId, …); the first part keeps speak; attachments follow in as few messages
//     as fit, in order; suggested actions go with the last part, or alone after it. An
//     attachment that does not fit even alone is replaced by a bridged line saying so
//     (attachmentTooLargeText). Parts get the ids <bridge activity id>#1, #2, … and are sent in
//     order.
//   - The agent-only Escalate command is never split: its text (the agent note, or the
//     transcript summary) is cut to fit and ends with trimmedMarker. Its tags are never cut or
//     dropped: when the tags alone are over the limit the escalation fails with ErrTooLarge.
//   - The EndConversation command's text is cut the same way.
//   - A message whose envelope alone (without text, attachments and suggested actions) is over
//     the limit cannot be sent: ErrTooLarge.

// trimmedMarker ends a command text cut to fit the limit.
const trimmedMarker = "\n[…trimmed to fit Omnichannel's 28 KB message limit; the full conversation is in the transcript]"

// attachmentTooLargeText replaces an attachment too large for any message.
const attachmentTooLargeText = "An attachment could not be delivered: it is larger than this chat allows."

// sizeOf returns the serialized size of a.
func sizeOf(a *activity.Activity) int {
	b, err := activity.Marshal(a)
	if err != nil {
		return int(^uint(0) >> 1)
	}
	return len(b)
}

// splitMessage returns the messages that carry a, each at most limit bytes serialized. a is
// not changed; the parts are new activities. dropped counts attachments replaced by a notice.
func splitMessage(a *activity.Activity, limit int) (parts []*activity.Activity, dropped int, err error) {
	if sizeOf(a) <= limit {
		return []*activity.Activity{a.Clone()}, 0, nil
	}
	env := a.Clone()
	env.Text, env.Speak, env.Attachments, env.SuggestedActions = "", "", nil, nil
	delete(env.Extra, "speak")
	if n := sizeOf(env); n > limit {
		return nil, 0, fmt.Errorf("%w: %d bytes without text or attachments, limit %d", ErrTooLarge, n, limit)
	}
	part := func() *activity.Activity { return env.Clone() }

	rest := a.Text
	first := true
	for rest != "" {
		p := part()
		if first && a.Speak != "" {
			p.Speak = a.Speak
			if sizeOf(p) > limit {
				p.Speak = "" // a speak text over the limit cannot travel; the text still does
			}
		}
		first = false
		n := longestFit(rest, limit, func(s string) *activity.Activity { p.Text = s; return p })
		if n == 0 {
			return nil, 0, fmt.Errorf("%w: no text fits beside the envelope", ErrTooLarge)
		}
		chunk, next := cutAtSpace(rest, n)
		p.Text = chunk
		parts = append(parts, p)
		rest = next
	}

	var group []activity.Attachment
	flush := func() {
		if len(group) > 0 {
			p := part()
			p.Attachments = group
			parts = append(parts, p)
			group = nil
		}
	}
	for _, att := range a.Attachments {
		p := part()
		p.Attachments = append(append([]activity.Attachment(nil), group...), att)
		if sizeOf(p) <= limit {
			group = p.Attachments
			continue
		}
		flush()
		p.Attachments = []activity.Attachment{att}
		if sizeOf(p) <= limit {
			group = p.Attachments
			continue
		}
		dropped++
		p.Attachments = nil
		p.Text = attachmentTooLargeText
		parts = append(parts, p)
	}
	flush()

	if a.SuggestedActions != nil {
		last := parts[len(parts)-1] // a was over the limit, so it had text or attachments
		last.SuggestedActions = a.SuggestedActions
		if sizeOf(last) > limit {
			last.SuggestedActions = nil
			p := part()
			p.SuggestedActions = a.SuggestedActions
			if sizeOf(p) > limit {
				return nil, 0, fmt.Errorf("%w: the suggested actions alone are over the limit", ErrTooLarge)
			}
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return nil, 0, fmt.Errorf("%w: nothing of the message fits", ErrTooLarge)
	}
	return parts, dropped, nil
}

// longestFit returns the longest prefix length of s, at a rune boundary, for which build's
// activity weighs at most limit bytes (0 when none does).
func longestFit(s string, limit int, build func(string) *activity.Activity) int {
	lo, hi := 0, len(s) // lo is a rune boundary known to fit (or 0); nothing over hi fits
	for lo < hi {
		m := (lo + hi + 1) / 2
		for m > lo && m < len(s) && !utf8.RuneStart(s[m]) {
			m--
		}
		if m == lo { // no boundary in (lo, mid]: the next one is the end of the rune at lo
			_, w := utf8.DecodeRuneInString(s[lo:])
			if m = lo + w; m > hi {
				break
			}
		}
		if sizeOf(build(s[:m])) <= limit {
			lo = m
		} else {
			hi = m - 1
		}
	}
	return lo
}

// cutAtSpace cuts s at n: at the last whitespace before n when there is one in the second half
// of s[:n] (the whitespace around the cut is dropped), else at n. It returns the chunk and the
// rest, the rest without leading whitespace.
func cutAtSpace(s string, n int) (chunk, rest string) {
	if n >= len(s) {
		return s, ""
	}
	cut := n
	for i := n; i > n/2; {
		r, w := utf8.DecodeLastRuneInString(s[:i])
		if unicode.IsSpace(r) {
			cut = i - w
			break
		}
		i -= w
	}
	chunk = strings.TrimRightFunc(s[:cut], unicode.IsSpace)
	rest = s[cut:]
	for rest != "" {
		r, w := utf8.DecodeRuneInString(rest)
		if !unicode.IsSpace(r) {
			break
		}
		rest = rest[w:]
	}
	if chunk == "" { // only whitespace before n: cut at n instead
		return s[:n], s[n:]
	}
	return chunk, rest
}

// fitCommand cuts a command's text so that it weighs at most limit bytes, ending it with
// trimmedMarker. It reports whether it cut; it returns ErrTooLarge when the command is over
// the limit with no text at all (the tags are never cut).
func fitCommand(a *activity.Activity, limit int) (bool, error) {
	if sizeOf(a) <= limit {
		return false, nil
	}
	text := a.Text
	a.Text = ""
	if n := sizeOf(a); n > limit {
		return false, fmt.Errorf("%w: the command is %d bytes without its text, limit %d", ErrTooLarge, n, limit)
	}
	a.Text = trimmedMarker
	if sizeOf(a) > limit {
		a.Text = "" // no room even for the marker: the tags travel alone
		return true, nil
	}
	n := longestFit(text, limit, func(s string) *activity.Activity { a.Text = s + trimmedMarker; return a })
	a.Text = text[:n] + trimmedMarker
	return true, nil
}
