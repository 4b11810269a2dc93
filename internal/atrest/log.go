package atrest

import (
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/bfbridge/bfbridge/activity"
)

// Log keeps the tokens that activities carry toward the bot encrypted in the conversation log,
// which is at rest like any store: the customer's single sign-on token in a
// `signin/tokenExchange` invoke (signin.md §2c) and the token of a `tokens/response` event a
// channel passes on (§2b, §7). The Hub seals them before the append and opens them on the copy
// it delivers to a leg (bridge.Sealer); everything else passes untouched, and nothing but the
// token field changes.
type Log struct{ box *Box }

// NewLog returns the log's sealer on box.
func NewLog(box *Box) *Log { return &Log{box: box} }

// logPrefix marks a token sealed by Log (the token service seals its own tokens/response
// events with a prefix of its own, which Log leaves to it).
const logPrefix = "bfbridge-log-sealed:"

// carriesToken reports whether a's value holds a token bound for the bot.
func carriesToken(a *activity.Activity) bool {
	switch {
	case len(a.Value) == 0:
		return false
	case a.Type == activity.TypeInvoke && a.Name == "signin/tokenExchange":
		return true
	case a.Type == activity.TypeEvent && a.Name == "tokens/response":
		return true
	}
	return false
}

// Seal encrypts the token of a in place, bound to the conversation convID, before a is logged.
func (l *Log) Seal(convID string, a *activity.Activity) error {
	if !carriesToken(a) {
		return nil
	}
	return rewriteToken(a, func(tok string) (string, error) {
		if tok == "" || strings.HasPrefix(tok, "bfbridge-") { // none, or already sealed
			return tok, nil
		}
		return logPrefix + base64.RawURLEncoding.EncodeToString(l.box.Seal([]byte(tok), "log\x00"+convID)), nil
	})
}

// Open returns a with its token opened: a copy when it had a sealed one, else a itself (a
// record of the log is shared and read-only).
func (l *Log) Open(convID string, a *activity.Activity) (*activity.Activity, error) {
	if !carriesToken(a) || !strings.Contains(string(a.Value), logPrefix) {
		return a, nil
	}
	cp := *a
	err := rewriteToken(&cp, func(tok string) (string, error) {
		rest, ok := strings.CutPrefix(tok, logPrefix)
		if !ok {
			return tok, nil
		}
		raw, err := base64.RawURLEncoding.DecodeString(rest)
		if err != nil {
			return "", ErrSealed
		}
		plain, err := l.box.Open(raw, "log\x00"+convID)
		return string(plain), err
	})
	if err != nil {
		return nil, err
	}
	return &cp, nil
}

// rewriteToken replaces value.token of a with f's answer, keeping every other field of the
// value as it was. A value that is not a JSON object, or has no string token, is left alone.
func rewriteToken(a *activity.Activity, f func(string) (string, error)) error {
	var v map[string]json.RawMessage
	if json.Unmarshal(a.Value, &v) != nil {
		return nil
	}
	var tok string
	if raw, ok := v["token"]; !ok || json.Unmarshal(raw, &tok) != nil {
		return nil
	}
	out, err := f(tok)
	if err != nil || out == tok {
		return err
	}
	enc, err := json.Marshal(out)
	if err != nil {
		return err
	}
	v["token"] = enc
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	a.Value = b
	return nil
}
