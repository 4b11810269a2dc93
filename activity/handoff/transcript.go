package handoff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/bfbridge/bfbridge/activity"
)

// TranscriptName is the attachment name of a handoff transcript (botframework.md §6). It is
// matched without regard to case, as Copilot's HandoffHelper.cs does.
const TranscriptName = "Transcript"

// TranscriptContentType is the transcript attachment's content type.
const TranscriptContentType = "application/json"

// readAttachments reads the transcript from a handoff event's attachments. The first attachment
// named Transcript is the transcript, inline (content) or by reference (contentUrl), or both;
// further transcripts and other attachments are ignored with a note (hubs "must ignore
// attachment types they don't understand").
func readAttachments(atts []activity.Attachment, ns *notes) Transcript {
	var t Transcript
	found := false
	for i, att := range atts {
		path := fmt.Sprintf("attachments[%d]", i)
		if !strings.EqualFold(att.Name, TranscriptName) {
			ns.add(path, NoteIgnored, "attachment %q (%s) is not a transcript", att.Name, att.ContentType)
			continue
		}
		if found {
			ns.add(path, NoteIgnored, "a second transcript attachment; the first one is used")
			continue
		}
		found = true
		if att.ContentType != "" && !strings.EqualFold(att.ContentType, TranscriptContentType) {
			ns.add(path+".contentType", NoteMalformed, "content type %q, not %s; read anyway", att.ContentType, TranscriptContentType)
		}
		t.URL = att.ContentURL
		if len(att.Content) > 0 && !isNull(att.Content) {
			t.Activities = parseTranscriptContent(att.Content, path+".content", ns, 0)
		}
	}
	return t
}

// ParseTranscriptContent reads transcript content: the Connector's {"activities":[…]} (member
// name matched without regard to case, as the PVA test framework writes "Activities"), a
// .transcript file's array or {"transcript":[…]} object, or a string holding any of these (as
// Dataverse stores conversation transcripts). Items without a type, and items that are not
// activities, are skipped with a note.
func ParseTranscriptContent(raw json.RawMessage) ([]*activity.Activity, []Note) {
	var ns notes
	acts := parseTranscriptContent(raw, "content", &ns, 0)
	return acts, ns
}

func parseTranscriptContent(raw json.RawMessage, path string, ns *notes, depth int) []*activity.Activity {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil
	}
	var items []json.RawMessage
	switch raw[0] {
	case '"':
		var s string
		inner := ""
		if depth == 0 && json.Unmarshal(raw, &s) == nil {
			inner = strings.TrimSpace(s)
		}
		if inner == "" || (inner[0] != '{' && inner[0] != '[') {
			ns.add(path, NoteMalformed, "transcript content is a string, not JSON activities")
			return nil
		}
		ns.add(path, NoteMalformed, "transcript content is a string holding JSON; read what it holds")
		return parseTranscriptContent(json.RawMessage(s), path, ns, depth+1)
	case '[':
		if json.Unmarshal(raw, &items) != nil {
			ns.add(path, NoteMalformed, "transcript content is not an array of activities")
			return nil
		}
	case '{':
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			ns.add(path, NoteMalformed, "transcript content is not a JSON object")
			return nil
		}
		var list json.RawMessage
		for _, k := range sortedKeys(m) {
			if strings.EqualFold(k, "activities") || k == "transcript" {
				list = m[k]
				break
			}
		}
		if list == nil || json.Unmarshal(list, &items) != nil {
			ns.add(path, NoteMalformed, "transcript content has no activities array")
			return nil
		}
	default:
		ns.add(path, NoteMalformed, "transcript content is not JSON activities")
		return nil
	}
	out := make([]*activity.Activity, 0, len(items))
	for i, it := range items {
		a, err := activity.Decode(it)
		if err != nil || a.Type == "" {
			ns.add(fmt.Sprintf("%s.activities[%d]", path, i), NoteIgnored, "not an activity with a type; skipped")
			continue
		}
		out = append(out, a)
	}
	return out
}

// transcriptAttachments writes t as the handoff transcript attachment.
func transcriptAttachments(t Transcript) ([]activity.Attachment, error) {
	if t.IsZero() {
		return nil, nil
	}
	att := activity.Attachment{ContentType: TranscriptContentType, Name: TranscriptName, ContentURL: t.URL}
	if len(t.Activities) > 0 {
		b, err := activity.Marshal(struct {
			Activities []*activity.Activity `json:"activities"`
		}{t.Activities})
		if err != nil {
			return nil, fmt.Errorf("handoff: transcript: %w", err)
		}
		att.Content = b
	}
	return []activity.Attachment{att}, nil
}

// SummaryMaxChars bounds the summary Summary writes.
const SummaryMaxChars = 4000

// Summary writes a plain-text summary of an escalation for the agent, used as the Omnichannel
// Escalate text when the escalation has no agent note: the reason, the last topic and phrases,
// then the transcript's messages as "Customer: …" / "Bot: …" / "Agent: …" lines, keeping the
// most recent lines that fit in SummaryMaxChars characters. With nothing to say it is
// "The bot requested a human agent."
func Summary(e *Escalation) string {
	var head []string
	if e.Reason.Text != "" {
		head = append(head, "Reason: "+e.Reason.Text)
	}
	if e.Reason.LastTopic != "" {
		head = append(head, "Last topic: "+e.Reason.LastTopic)
	}
	if len(e.Reason.LastPhrases) > 0 {
		head = append(head, "Last phrases: "+strings.Join(e.Reason.LastPhrases, " | "))
	}
	var lines []string
	for _, a := range e.Transcript.Activities {
		if a.Type != activity.TypeMessage || strings.TrimSpace(a.Text) == "" {
			continue
		}
		lines = append(lines, speaker(a, e.Source.BotID)+": "+strings.Join(strings.Fields(a.Text), " "))
	}
	if len(head) == 0 && len(lines) == 0 {
		return "The bot requested a human agent."
	}
	out := strings.Join(head, "\n")
	budget := SummaryMaxChars - utf16Len(out)
	first := len(lines)
	for first > 0 {
		n := utf16Len(lines[first-1]) + 1
		if n > budget {
			break
		}
		budget -= n
		first--
	}
	if tail := lines[first:]; len(tail) > 0 {
		if out != "" {
			out += "\n"
		}
		out += strings.Join(tail, "\n")
	}
	cut, _ := truncateUTF16(out, SummaryMaxChars)
	return cut
}

func speaker(a *activity.Activity, botID string) string {
	if a.From == nil {
		return "Unknown"
	}
	switch {
	case a.From.Role == activity.RoleUser:
		return "Customer"
	case a.From.Role == activity.RoleBot || a.From.Role == activity.RoleSkill || (botID != "" && a.From.ID == botID):
		return "Bot"
	case a.From.Role == "agent":
		return "Agent"
	case a.From.Name != "":
		return a.From.Name
	}
	return "Unknown"
}
