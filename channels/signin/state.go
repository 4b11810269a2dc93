package signin

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"
)

// maxState bounds the state parameter (base64 text). A botbuilder state is a few hundred bytes:
// a conversation reference and a connection name.
const maxState = 8 << 10

// State is the sign-in state a bot passes to GetSignInUrl and GetSignInResource: the base64 of
// {connectionName, conversation, relatesTo, msAppId} (signin.md §1 "state"). The legacy adapter
// and the Emulator write the keys in PascalCase; encoding/json matches field names without
// regard to case, which is what §1 asks for ("parse case-insensitively").
type State struct {
	ConnectionName string  `json:"connectionName"`
	Conversation   ConvRef `json:"conversation"`
	MsAppID        string  `json:"msAppId"`
}

// ConvRef is the part of a ConversationReference the token service reads. The Agents SDK
// names the bot "agent" (§1).
type ConvRef struct {
	ActivityID   string  `json:"activityId"`
	User         Account `json:"user"`
	Bot          Account `json:"bot"`
	Agent        Account `json:"agent"`
	Conversation Account `json:"conversation"`
	ChannelID    string  `json:"channelId"`
	ServiceURL   string  `json:"serviceUrl"`
}

// Account is a ChannelAccount or ConversationAccount: only its id counts here.
type Account struct {
	ID string `json:"id"`
}

// BotID returns the bot's id, under whichever name the SDK gave it.
func (r ConvRef) BotID() string {
	if r.Bot.ID != "" {
		return r.Bot.ID
	}
	return r.Agent.ID
}

// Errors of DecodeState.
var (
	errStateSize     = errors.New("the state is too long")
	errStateEncoding = errors.New("the state is not base64")
	errStateJSON     = errors.New("the state is not a sign-in state")
	errStateMissing  = errors.New("the state names no connection, conversation or user")
)

// DecodeState reads a state parameter: standard base64 (the SDKs' encoding), also accepted
// URL-safe or unpadded, and a '+' that a form decoder turned into a space read back as '+'.
// The JSON must be UTF-8 and name a connection, a conversation and a user.
func DecodeState(s string) (State, error) {
	if len(s) > maxState {
		return State{}, errStateSize
	}
	s = strings.ReplaceAll(strings.TrimSpace(s), " ", "+")
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err = enc.DecodeString(s); err == nil {
			break
		}
	}
	if err != nil {
		return State{}, errStateEncoding
	}
	if !utf8.Valid(raw) || !json.Valid(raw) {
		return State{}, errStateJSON
	}
	var st State
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&st); err != nil {
		return State{}, errStateJSON
	}
	if st.ConnectionName == "" || st.Conversation.Conversation.ID == "" || st.Conversation.User.ID == "" {
		return State{}, errStateMissing
	}
	return st, nil
}
