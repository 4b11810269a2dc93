package activity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// TranscriptForm is how a .transcript file holds its activities (transcript.md T2100).
type TranscriptForm int

const (
	// TranscriptArray is a flat JSON array of activities.
	TranscriptArray TranscriptForm = iota
	// TranscriptObject is an object whose "transcript" member is that array.
	TranscriptObject
)

// Transcript is a decoded .transcript file.
type Transcript struct {
	Form       TranscriptForm
	Activities []*Activity
	// Extra holds the other members of the object form, written back verbatim.
	Extra Extra
}

// ReadTranscript reads a .transcript file in either form (T2101). Children without a type are
// skipped (T2008); unknown members are kept (T2005). A UTF-8 byte order mark is refused (T2102).
func ReadTranscript(r io.Reader) (*Transcript, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("transcript: %w", err)
	}
	if bytes.HasPrefix(b, []byte("\xEF\xBB\xBF")) {
		return nil, fmt.Errorf("transcript: starts with a byte order mark (rule T2102)")
	}
	t := &Transcript{}
	body := bytes.TrimSpace(b)
	var items []json.RawMessage
	switch {
	case len(body) > 0 && body[0] == '[':
		if err := json.Unmarshal(body, &items); err != nil {
			return nil, fmt.Errorf("transcript: %w", err)
		}
	case len(body) > 0 && body[0] == '{':
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(body, &obj); err != nil {
			return nil, fmt.Errorf("transcript: %w", err)
		}
		raw, ok := obj["transcript"]
		if !ok {
			return nil, fmt.Errorf("transcript: object has no transcript member (rule T2100)")
		}
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, fmt.Errorf("transcript: transcript member: %w", err)
		}
		delete(obj, "transcript")
		t.Form = TranscriptObject
		if len(obj) > 0 {
			t.Extra = Extra(obj)
		}
	default:
		return nil, fmt.Errorf("transcript: neither an array nor an object (rule T2100)")
	}
	for i, raw := range items {
		var probe struct {
			Type *string `json:"type"`
		}
		if err := json.Unmarshal(raw, &probe); err != nil || probe.Type == nil {
			continue // T2007/T2008: skip what is not an activity
		}
		a, err := Decode(raw)
		if err != nil {
			return nil, fmt.Errorf("transcript: activity %d: %w", i, err)
		}
		t.Activities = append(t.Activities, a)
	}
	return t, nil
}

// WriteTranscript writes t in its form as indented UTF-8 JSON without a byte order mark.
func WriteTranscript(w io.Writer, t *Transcript) error {
	var v any = t.Activities
	if t.Activities == nil {
		v = []*Activity{}
	}
	if t.Form == TranscriptObject {
		obj := Extra{}
		for k, raw := range t.Extra {
			obj[k] = raw
		}
		acts, err := Marshal(v)
		if err != nil {
			return fmt.Errorf("transcript: %w", err)
		}
		obj["transcript"] = acts
		v = obj
	}
	raw, err := Marshal(v)
	if err != nil {
		return fmt.Errorf("transcript: %w", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return fmt.Errorf("transcript: %w", err)
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}
