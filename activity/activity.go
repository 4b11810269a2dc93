// Package activity is the Bot Framework Activity schema as it travels on the wire: every field of
// the specification (botframework-activity.md), unknown members kept verbatim (rule A2005),
// channelData, value, entities and attachment content kept as raw JSON, and times that keep the
// text they came with. It does no I/O.
package activity

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Activity types (botframework-activity.md §2; SDK ActivityTypes).
const (
	TypeMessage               = "message"
	TypeConversationUpdate    = "conversationUpdate"
	TypeContactRelationUpdate = "contactRelationUpdate"
	TypeInstallationUpdate    = "installationUpdate"
	TypeEndOfConversation     = "endOfConversation"
	TypeEvent                 = "event"
	TypeInvoke                = "invoke"
	TypeInvokeResponse        = "invokeResponse"
	TypeMessageUpdate         = "messageUpdate"
	TypeMessageDelete         = "messageDelete"
	TypeMessageReaction       = "messageReaction"
	TypeSuggestion            = "suggestion"
	TypeTrace                 = "trace"
	TypeTyping                = "typing"
	TypeHandoff               = "handoff"
	TypeCommand               = "command"
	TypeCommandResult         = "commandResult"
	TypeDeleteUserData        = "deleteUserData"
	TypeDelay                 = "delay"
)

// Input hints as bots really send them (SDK InputHints; the spec's prose says accepting/expecting/ignoring).
const (
	InputHintAccepting = "acceptingInput"
	InputHintExpecting = "expectingInput"
	InputHintIgnoring  = "ignoringInput"
)

// Delivery modes.
const (
	DeliveryModeNormal        = "normal"
	DeliveryModeNotification  = "notification"
	DeliveryModeExpectReplies = "expectReplies"
	DeliveryModeEphemeral     = "ephemeral"
)

// Activity is one Bot Framework activity. Fields are written only when set; Extra holds members
// this type does not model. Slices distinguish absent (nil) from empty ([]), as the wire does.
type Activity struct {
	Type             string                 `json:"type,omitempty"`
	ID               string                 `json:"id,omitempty"`
	Timestamp        Time                   `json:"timestamp,omitzero"`
	LocalTimestamp   Time                   `json:"localTimestamp,omitzero"`
	LocalTimezone    string                 `json:"localTimezone,omitempty"`
	ServiceURL       string                 `json:"serviceUrl,omitempty"`
	ChannelID        string                 `json:"channelId,omitempty"`
	From             *ChannelAccount        `json:"from,omitempty"`
	Conversation     *ConversationAccount   `json:"conversation,omitempty"`
	Recipient        *ChannelAccount        `json:"recipient,omitempty"`
	TextFormat       string                 `json:"textFormat,omitempty"`
	AttachmentLayout string                 `json:"attachmentLayout,omitempty"`
	MembersAdded     []ChannelAccount       `json:"membersAdded,omitzero"`
	MembersRemoved   []ChannelAccount       `json:"membersRemoved,omitzero"`
	ReactionsAdded   []MessageReaction      `json:"reactionsAdded,omitzero"`
	ReactionsRemoved []MessageReaction      `json:"reactionsRemoved,omitzero"`
	TopicName        string                 `json:"topicName,omitempty"`
	HistoryDisclosed *bool                  `json:"historyDisclosed,omitempty"`
	Locale           string                 `json:"locale,omitempty"`
	Text             string                 `json:"text,omitempty"`
	Speak            string                 `json:"speak,omitempty"`
	InputHint        string                 `json:"inputHint,omitempty"`
	Summary          string                 `json:"summary,omitempty"`
	SuggestedActions *SuggestedActions      `json:"suggestedActions,omitempty"`
	Attachments      []Attachment           `json:"attachments,omitzero"`
	Entities         []json.RawMessage      `json:"entities,omitzero"`
	ChannelData      json.RawMessage        `json:"channelData,omitempty"`
	Action           string                 `json:"action,omitempty"`
	ReplyToID        string                 `json:"replyToId,omitempty"`
	Label            string                 `json:"label,omitempty"`
	ValueType        string                 `json:"valueType,omitempty"`
	Value            json.RawMessage        `json:"value,omitempty"`
	Name             string                 `json:"name,omitempty"`
	RelatesTo        *ConversationReference `json:"relatesTo,omitempty"`
	Code             string                 `json:"code,omitempty"`
	Expiration       Time                   `json:"expiration,omitzero"`
	Importance       string                 `json:"importance,omitempty"`
	DeliveryMode     string                 `json:"deliveryMode,omitempty"`
	ListenFor        []string               `json:"listenFor,omitzero"`
	TextHighlights   []TextHighlight        `json:"textHighlights,omitzero"`
	SemanticAction   *SemanticAction        `json:"semanticAction,omitempty"`
	CallerID         string                 `json:"callerId,omitempty"`

	// Extra holds members this type does not model, written back verbatim.
	Extra Extra `json:"-"`
}

// UnmarshalJSON decodes a, keeping unknown members in a.Extra.
func (a *Activity) UnmarshalJSON(b []byte) error {
	type plain Activity
	*a = Activity{}
	return decodeInto(b, (*plain)(a), &a.Extra)
}

// MarshalJSON encodes a with its unknown members.
func (a Activity) MarshalJSON() ([]byte, error) {
	return encodeActivity(&a)
}

// Clone returns a deep copy of a, so that a relay can change one leg's copy without touching the
// record it came from.
func (a *Activity) Clone() *Activity {
	b, err := a.MarshalJSON()
	if err != nil {
		panic(fmt.Sprintf("activity: clone: %v", err)) // a decoded or built Activity always encodes
	}
	var c Activity
	if err := c.UnmarshalJSON(b); err != nil {
		panic(fmt.Sprintf("activity: clone: %v", err))
	}
	return &c
}

// Decode parses one activity.
func Decode(b []byte) (*Activity, error) {
	var a Activity
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, &ValidationError{Code: CodeMalformed, Message: "the body is not a JSON activity: " + err.Error(), Err: err}
	}
	return &a, nil
}

// ChannelDataField returns the raw value of one member of channelData, or nil.
func (a *Activity) ChannelDataField(name string) json.RawMessage {
	if len(a.ChannelData) == 0 || a.ChannelData[0] != '{' {
		return nil
	}
	var found json.RawMessage
	err := eachMember(a.ChannelData, func(k string, raw []byte) {
		if k == name { // the last of duplicates, as encoding/json decodes them
			found = raw[:len(raw):len(raw)]
		}
	})
	if err != nil {
		return nil
	}
	return found
}

// SetChannelDataField sets one member of channelData, keeping the others; channelData that is not
// an object is replaced.
func (a *Activity) SetChannelDataField(name string, v any) error {
	m := map[string]json.RawMessage{}
	if len(a.ChannelData) > 0 && a.ChannelData[0] == '{' {
		if err := json.Unmarshal(a.ChannelData, &m); err != nil {
			return fmt.Errorf("activity: channelData: %w", err)
		}
	}
	raw, err := Marshal(v)
	if err != nil {
		return fmt.Errorf("activity: channelData %s: %w", name, err)
	}
	m[name] = raw
	b, err := Marshal(m)
	if err != nil {
		return fmt.Errorf("activity: channelData: %w", err)
	}
	a.ChannelData = b
	return nil
}

// ClientActivityID returns channelData.clientActivityID, which Web Chat matches the echo by.
func (a *Activity) ClientActivityID() string {
	var s string
	if raw := a.ChannelDataField("clientActivityID"); raw != nil {
		_ = json.Unmarshal(raw, &s)
	}
	return s
}

// ChannelAccount is a party of a conversation.
type ChannelAccount struct {
	ID          string          `json:"id,omitempty"`
	Name        string          `json:"name,omitempty"`
	AADObjectID string          `json:"aadObjectId,omitempty"`
	Role        Role            `json:"role,omitempty"`
	Properties  json.RawMessage `json:"properties,omitempty"`
	Extra       Extra           `json:"-"`
}

// UnmarshalJSON decodes c, keeping unknown members in c.Extra.
func (c *ChannelAccount) UnmarshalJSON(b []byte) error {
	type plain ChannelAccount
	*c = ChannelAccount{}
	return decodeInto(b, (*plain)(c), &c.Extra)
}

// MarshalJSON encodes c with its unknown members.
func (c ChannelAccount) MarshalJSON() ([]byte, error) {
	return appendChannelAccount(nil, &c, false, nil)
}

// Role is a ChannelAccount role: "user", "bot" or "skill".
type Role string

// Roles.
const (
	RoleUser  Role = "user"
	RoleBot   Role = "bot"
	RoleSkill Role = "skill"
)

// UnmarshalJSON accepts the string roles and the numeric ones of Omnichannel context events and
// Dataverse transcripts (1 = user, 0 = bot), which it writes back as strings.
func (r *Role) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*r = Role(s)
	case string(b) == "1":
		*r = RoleUser
	case string(b) == "0":
		*r = RoleBot
	case string(b) == "null":
		*r = ""
	default:
		*r = Role(b)
	}
	return nil
}

// ConversationAccount identifies a conversation.
type ConversationAccount struct {
	IsGroup          *bool           `json:"isGroup,omitempty"`
	ConversationType string          `json:"conversationType,omitempty"`
	ID               string          `json:"id,omitempty"`
	Name             string          `json:"name,omitempty"`
	AADObjectID      string          `json:"aadObjectId,omitempty"`
	Role             Role            `json:"role,omitempty"`
	TenantID         string          `json:"tenantId,omitempty"`
	Properties       json.RawMessage `json:"properties,omitempty"`
	Extra            Extra           `json:"-"`
}

// UnmarshalJSON decodes c, keeping unknown members in c.Extra.
func (c *ConversationAccount) UnmarshalJSON(b []byte) error {
	type plain ConversationAccount
	*c = ConversationAccount{}
	return decodeInto(b, (*plain)(c), &c.Extra)
}

// MarshalJSON encodes c with its unknown members.
func (c ConversationAccount) MarshalJSON() ([]byte, error) {
	return appendConversationAccount(nil, &c, false, nil)
}

// ConversationReference points at a conversation and, optionally, one activity in it.
type ConversationReference struct {
	ActivityID   string               `json:"activityId,omitempty"`
	User         *ChannelAccount      `json:"user,omitempty"`
	Bot          *ChannelAccount      `json:"bot,omitempty"`
	Conversation *ConversationAccount `json:"conversation,omitempty"`
	ChannelID    string               `json:"channelId,omitempty"`
	ServiceURL   string               `json:"serviceUrl,omitempty"`
	Locale       string               `json:"locale,omitempty"`
	Extra        Extra                `json:"-"`
}

// UnmarshalJSON decodes r, keeping unknown members in r.Extra.
func (r *ConversationReference) UnmarshalJSON(b []byte) error {
	type plain ConversationReference
	*r = ConversationReference{}
	return decodeInto(b, (*plain)(r), &r.Extra)
}

// MarshalJSON encodes r with its unknown members.
func (r ConversationReference) MarshalJSON() ([]byte, error) {
	type plain ConversationReference
	return encodeWithExtra(plain(r), r.Extra)
}

// Attachment is a file or card. Content stays raw JSON: cards are passed through untouched.
type Attachment struct {
	ContentType  string          `json:"contentType,omitempty"`
	ContentURL   string          `json:"contentUrl,omitempty"`
	Content      json.RawMessage `json:"content,omitempty"`
	Name         string          `json:"name,omitempty"`
	ThumbnailURL string          `json:"thumbnailUrl,omitempty"`
	Extra        Extra           `json:"-"`
}

// UnmarshalJSON decodes t, keeping unknown members in t.Extra.
func (t *Attachment) UnmarshalJSON(b []byte) error {
	type plain Attachment
	*t = Attachment{}
	return decodeInto(b, (*plain)(t), &t.Extra)
}

// MarshalJSON encodes t with its unknown members.
func (t Attachment) MarshalJSON() ([]byte, error) {
	type plain Attachment
	return encodeWithExtra(plain(t), t.Extra)
}

// SuggestedActions are quick replies offered with a message.
type SuggestedActions struct {
	To      []string     `json:"to,omitzero"`
	Actions []CardAction `json:"actions,omitzero"`
	Extra   Extra        `json:"-"`
}

// UnmarshalJSON decodes s, keeping unknown members in s.Extra.
func (s *SuggestedActions) UnmarshalJSON(b []byte) error {
	type plain SuggestedActions
	*s = SuggestedActions{}
	return decodeInto(b, (*plain)(s), &s.Extra)
}

// MarshalJSON encodes s with its unknown members.
func (s SuggestedActions) MarshalJSON() ([]byte, error) {
	type plain SuggestedActions
	return encodeWithExtra(plain(s), s.Extra)
}

// CardAction is a clickable action.
type CardAction struct {
	Type         string          `json:"type,omitempty"`
	Title        string          `json:"title,omitempty"`
	Image        string          `json:"image,omitempty"`
	ImageAltText string          `json:"imageAltText,omitempty"`
	Text         string          `json:"text,omitempty"`
	DisplayText  string          `json:"displayText,omitempty"`
	Value        json.RawMessage `json:"value,omitempty"`
	ChannelData  json.RawMessage `json:"channelData,omitempty"`
	Extra        Extra           `json:"-"`
}

// UnmarshalJSON decodes c, keeping unknown members in c.Extra.
func (c *CardAction) UnmarshalJSON(b []byte) error {
	type plain CardAction
	*c = CardAction{}
	return decodeInto(b, (*plain)(c), &c.Extra)
}

// MarshalJSON encodes c with its unknown members.
func (c CardAction) MarshalJSON() ([]byte, error) {
	type plain CardAction
	return encodeWithExtra(plain(c), c.Extra)
}

// MessageReaction is one reaction added to or removed from a message.
type MessageReaction struct {
	Type  string `json:"type,omitempty"`
	Extra Extra  `json:"-"`
}

// UnmarshalJSON decodes m, keeping unknown members in m.Extra.
func (m *MessageReaction) UnmarshalJSON(b []byte) error {
	type plain MessageReaction
	*m = MessageReaction{}
	return decodeInto(b, (*plain)(m), &m.Extra)
}

// MarshalJSON encodes m with its unknown members.
func (m MessageReaction) MarshalJSON() ([]byte, error) {
	type plain MessageReaction
	return encodeWithExtra(plain(m), m.Extra)
}

// TextHighlight marks a span of a suggestion's text.
type TextHighlight struct {
	Text       string `json:"text,omitempty"`
	Occurrence *int   `json:"occurrence,omitempty"`
	Extra      Extra  `json:"-"`
}

// UnmarshalJSON decodes h, keeping unknown members in h.Extra.
func (h *TextHighlight) UnmarshalJSON(b []byte) error {
	type plain TextHighlight
	*h = TextHighlight{}
	return decodeInto(b, (*plain)(h), &h.Extra)
}

// MarshalJSON encodes h with its unknown members.
func (h TextHighlight) MarshalJSON() ([]byte, error) {
	type plain TextHighlight
	return encodeWithExtra(plain(h), h.Extra)
}

// SemanticAction is a programmatic action accompanying a request.
type SemanticAction struct {
	ID       string          `json:"id,omitempty"`
	State    string          `json:"state,omitempty"`
	Entities json.RawMessage `json:"entities,omitempty"`
	Extra    Extra           `json:"-"`
}

// UnmarshalJSON decodes s, keeping unknown members in s.Extra.
func (s *SemanticAction) UnmarshalJSON(b []byte) error {
	type plain SemanticAction
	*s = SemanticAction{}
	return decodeInto(b, (*plain)(s), &s.Extra)
}

// MarshalJSON encodes s with its unknown members.
func (s SemanticAction) MarshalJSON() ([]byte, error) {
	type plain SemanticAction
	return encodeWithExtra(plain(s), s.Extra)
}

// decodeInto decodes b into v and stores the unknown members in *extra.
func decodeInto(b []byte, v any, extra *Extra) error {
	e, err := decodeWithExtra(b, v)
	if err != nil {
		return err
	}
	*extra = e
	return nil
}
