package salesforce

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxSSELine bounds one line of the event stream (an event's data line).
const maxSSELine = 1 << 20

// sseEvent is one dispatched server-sent event: its id (the last one set, as the SSE rules
// say), its type ("message" when the event field is absent) and its data lines joined by
// newlines.
type sseEvent struct {
	ID    string
	Type  string
	Data  []byte
	HasID bool
}

// errLineTooLong: a stream line is over maxSSELine; the stream is abandoned.
var errLineTooLong = errors.New("sse: line too long")

// readSSE reads the event stream r (the WHATWG server-sent events format: lines ending in LF,
// CRLF or CR; "field: value", a leading space of the value dropped; ":" comments; a blank line
// dispatches) and calls fn for each event with data. lastID is the id in force before the
// stream; an event without an id field carries the last one seen. It returns fn's error, or
// the read error (io.EOF when the stream ends).
func readSSE(r io.Reader, lastID string, fn func(sseEvent) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var ev sseEvent
	var data bytes.Buffer
	ev.ID = lastID
	for {
		line, err := readLine(br)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			if data.Len() > 0 {
				ev.Data = bytes.TrimSuffix(data.Bytes(), []byte("\n"))
				if ev.Type == "" {
					ev.Type = "message"
				}
				if err := fn(ev); err != nil {
					return err
				}
			}
			data.Reset()
			ev = sseEvent{ID: ev.ID}
			continue
		}
		field, value := splitField(line)
		switch field {
		case "data":
			data.Write(value)
			data.WriteByte('\n')
		case "event":
			ev.Type = string(value)
		case "id":
			if !bytes.ContainsRune(value, 0) {
				ev.ID, ev.HasID = string(value), true
			}
		}
	}
}

// splitField splits a line into its field name and value ("" field for a comment).
func splitField(line []byte) (string, []byte) {
	if line[0] == ':' {
		return "", nil
	}
	name, value, found := bytes.Cut(line, []byte(":"))
	if !found {
		return string(line), nil
	}
	return string(name), bytes.TrimPrefix(value, []byte(" "))
}

// readLine reads one line without its end (LF, CRLF or CR).
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		b, err := br.ReadByte()
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				return nil, io.ErrUnexpectedEOF // an unterminated last line is not dispatched
			}
			return nil, err
		}
		switch b {
		case '\n':
			return line, nil
		case '\r':
			if next, err := br.Peek(1); err == nil && next[0] == '\n' {
				_, _ = br.ReadByte()
			}
			return line, nil
		}
		if len(line) >= maxSSELine {
			return nil, errLineTooLong
		}
		line = append(line, b)
	}
}

// envelope is the data of a MIAW conversation event (escalation.md §5, contact-centers-t2.md
// §6): the conversation it belongs to and the entry, whose payload is a JSON string.
type envelope struct {
	ChannelPlatformKey       string `json:"channelPlatformKey"`
	ChannelType              string `json:"channelType"`
	ChannelAddressIdentifier string `json:"channelAddressIdentifier"`
	ConversationID           string `json:"conversationId"`
	Entry                    entry  `json:"conversationEntry"`
}

type entry struct {
	EntryType         string          `json:"entryType"`
	Payload           json.RawMessage `json:"entryPayload"`
	Sender            participant     `json:"sender"`
	SenderDisplayName string          `json:"senderDisplayName"`
	Identifier        string          `json:"identifier"`
	ClientTimestamp   int64           `json:"clientTimestamp"`
}

type participant struct {
	Role    string `json:"role"`
	Subject string `json:"subject"`
	AppType string `json:"appType"`
}

// parseEnvelope reads an event's data. The entry payload, a JSON string on the stream, is
// decoded into the JSON it holds (an object, as the entries API gives it, is taken as it is).
func parseEnvelope(data []byte) (*envelope, error) {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("sse: envelope: %w", err)
	}
	if env.ConversationID == "" || env.Entry.EntryType == "" {
		return nil, errors.New("sse: envelope without conversationId or entryType")
	}
	p := bytes.TrimSpace(env.Entry.Payload)
	if len(p) > 0 && p[0] == '"' {
		var s string
		if err := json.Unmarshal(p, &s); err != nil {
			return nil, fmt.Errorf("sse: entryPayload: %w", err)
		}
		p = []byte(s)
	}
	if len(p) > 0 && !json.Valid(p) {
		return nil, errors.New("sse: entryPayload is not JSON")
	}
	env.Entry.Payload = p
	return &env, nil
}

// messagePayload is a CONVERSATION_MESSAGE entry's payload.
type messagePayload struct {
	AbstractMessage struct {
		ID            string `json:"id"`
		MessageType   string `json:"messageType"`
		StaticContent struct {
			FormatType  string `json:"formatType"`
			Text        string `json:"text"`
			Attachments []struct {
				ID       string `json:"id"`
				Name     string `json:"name"`
				MimeType string `json:"mimeType"`
				URL      string `json:"url"`
			} `json:"attachments"`
		} `json:"staticContent"`
	} `json:"abstractMessage"`
}

// participantPayload is a CONVERSATION_PARTICIPANT_CHANGED entry's payload.
type participantPayload struct {
	Entries []struct {
		Operation   string      `json:"operation"`
		Participant participant `json:"participant"`
		DisplayName string      `json:"displayName"`
	} `json:"entries"`
}

// routingPayload is a CONVERSATION_ROUTING_RESULT entry's payload.
type routingPayload struct {
	RoutingType   string `json:"routingType"`
	FailureType   string `json:"failureType"`
	FailureReason string `json:"failureReason"`
}

// failed reports whether the routing result is a failure (failureType other than None).
func (r routingPayload) failed() bool {
	return r.FailureType != "" && !strings.EqualFold(r.FailureType, "None")
}

// statusPayload is a CONVERSATION_SESSION_STATUS_CHANGED entry's payload, as far as the
// bridge reads it (its schema is not in the reference: an assumption).
type statusPayload struct {
	SessionStatus string `json:"sessionStatus"`
}
