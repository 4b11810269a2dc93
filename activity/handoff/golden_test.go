package handoff

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// goldenSeparator divides a golden file's input from its expected output.
const goldenSeparator = "----------"

// allDialects is the order in which golden files list emitted activities.
var allDialects = []Dialect{DialectOmnichannel, DialectHealthBot, DialectCopilot, DialectBotFramework, DialectOmnichannelCustom}

// TestGolden runs every testdata/*.golden file. A file is an input, a line "----------", and
// the expected output. The input is an activity as JSON, preceded by optional directive lines:
//
//	# recording: <path>          the activity is that file under shared/recordings (a .md file
//	                             is the Health Bot README, whose sendChannelData line is turned
//	                             into the message it sends; a .txt file is relaxed JSON)
//	# transcript: <path>[#/a/0]  the activity's Transcript attachment gets that recording (or
//	                             the JSON string at the pointer in it) as its content
//	# hint: <dialect>            detect with DetectFrom(dialect, …)
//	# roundtrip: normalized      the source dialect's own round trip is allowed to normalize
//	                             (without it, it must be exact)
//	# <anything else>            a comment
//
// The output is {"signal": what DetectFrom read, "error": its error, "emitted": {dialect:
// {"activity", "notes", "roundTrip"}}} for every dialect that has a form for the signal.
// roundTrip is "exact" when reading the emitted activity back gives the same model (the
// source's dialect aside), "normalized" when it differs but a second emission reads back the
// same again (the test fails otherwise). Run with -update to rewrite the outputs.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.golden"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".golden"), func(t *testing.T) {
			b, err := os.ReadFile(file)
			require.NoError(t, err)
			in, want, ok := strings.Cut(string(b), "\n"+goldenSeparator+"\n")
			require.True(t, ok, "no %q line", goldenSeparator)
			got := runGolden(t, in)
			if *update {
				require.NoError(t, os.WriteFile(file, []byte(in+"\n"+goldenSeparator+"\n"+got), 0o644))
				return
			}
			require.Equal(t, want, got)
		})
	}
}

type goldenEmitted struct {
	Activity  *activity.Activity `json:"activity,omitempty"`
	Notes     []Note             `json:"notes,omitempty"`
	RoundTrip string             `json:"roundTrip,omitempty"`
	Error     string             `json:"error,omitempty"`
}

type goldenOutput struct {
	Signal  Signal                    `json:"signal"`
	Error   string                    `json:"error,omitempty"`
	Emitted map[Dialect]goldenEmitted `json:"emitted,omitempty"`
}

func runGolden(t *testing.T, in string) string {
	t.Helper()
	var hint Dialect
	normalizes := false
	var body []string
	var raw []byte
	var transcript []byte
	for _, line := range strings.Split(in, "\n") {
		d, ok := strings.CutPrefix(line, "# ")
		if !ok {
			body = append(body, line)
			continue
		}
		key, val, _ := strings.Cut(d, ": ")
		switch key {
		case "recording":
			raw = loadRecording(t, val)
		case "transcript":
			transcript = loadTranscript(t, val)
		case "hint":
			hint = Dialect(val)
		case "roundtrip":
			normalizes = strings.HasPrefix(val, "normalized")
		}
	}
	if raw == nil {
		raw = []byte(strings.Join(body, "\n"))
	} else {
		require.Empty(t, strings.TrimSpace(strings.Join(body, "\n")), "a recording input has no body")
	}
	a, err := activity.Decode(raw)
	require.NoError(t, err)
	if transcript != nil {
		i := transcriptIndex(a)
		require.GreaterOrEqual(t, i, 0, "a transcript directive needs a Transcript attachment")
		a.Attachments[i].Content = transcript
	}
	sig, err := DetectFrom(hint, a)
	out := goldenOutput{Signal: sig}
	if err != nil {
		out.Error = err.Error()
		require.Equal(t, SignalNone, sig.Kind)
	}
	for _, d := range allDialects {
		em, notes, err := Emit(sig, d, EmitOptions{})
		if err != nil {
			require.ErrorIs(t, err, ErrUnsupported)
			continue
		}
		if out.Emitted == nil {
			out.Emitted = map[Dialect]goldenEmitted{}
		}
		rt := roundTrip(t, sig, d, em)
		if d == sig.Dialect && !normalizes {
			require.Equal(t, "exact", rt, "parse → emit → parse in the source dialect %s", d)
		}
		out.Emitted[d] = goldenEmitted{Activity: em, Notes: notes, RoundTrip: rt}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	require.NoError(t, enc.Encode(out))
	return buf.String()
}

// roundTrip reads an emitted activity back and checks that reading is stable.
func roundTrip(t *testing.T, s1 Signal, d Dialect, em *activity.Activity) string {
	t.Helper()
	wire, err := activity.Marshal(em)
	require.NoError(t, err)
	back, err := activity.Decode(wire)
	require.NoError(t, err)
	s2, err := DetectFrom(d, back)
	require.NoError(t, err)
	require.Equal(t, s1.Kind, s2.Kind, "emitted %s reads back as %s", d, s2.Kind)
	if string(payload(t, s1)) == string(payload(t, s2)) {
		return "exact"
	}
	em3, _, err := Emit(s2, d, EmitOptions{})
	require.NoError(t, err)
	s3, err := DetectFrom(d, em3)
	require.NoError(t, err)
	require.JSONEq(t, string(payload(t, s2)), string(payload(t, s3)), "%s: a second emission reads back differently", d)
	return "normalized"
}

// payload is the signal's model as JSON, without the source dialect.
func payload(t *testing.T, s Signal) []byte {
	t.Helper()
	var v any
	switch s.Kind {
	case SignalEscalation:
		v = s.Escalation
	case SignalEnd:
		v = s.End
	case SignalStatus:
		v = s.Status
	case SignalContext:
		v = s.Context
	}
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	if src, ok := m["source"].(map[string]any); ok {
		delete(src, "dialect")
	}
	b, err = json.Marshal(m)
	require.NoError(t, err)
	return b
}

func transcriptIndex(a *activity.Activity) int {
	for i, att := range a.Attachments {
		if strings.EqualFold(att.Name, TranscriptName) {
			return i
		}
	}
	return -1
}

func recordingPath(t *testing.T, rel string) string {
	t.Helper()
	return filepath.Join(testutil.SharedDir(t), "recordings", filepath.FromSlash(rel))
}

// loadRecording reads a recording as an activity's JSON.
func loadRecording(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(recordingPath(t, rel))
	require.NoError(t, err)
	switch filepath.Ext(rel) {
	case ".md":
		return healthBotActivity(t, b)
	case ".txt":
		b = relaxJSON(b)
	}
	require.True(t, json.Valid(b), "%s is not JSON", rel)
	return b
}

// loadTranscript reads a recording, or the JSON string at a pointer in it, as transcript content.
func loadTranscript(t *testing.T, spec string) []byte {
	t.Helper()
	rel, ptr, _ := strings.Cut(spec, "#")
	b, err := os.ReadFile(recordingPath(t, rel))
	require.NoError(t, err)
	if ptr == "" {
		return b
	}
	var v any
	require.NoError(t, json.Unmarshal(b, &v))
	for _, p := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i, err := strconv.Atoi(p)
			require.NoError(t, err)
			v = x[i]
		}
	}
	s, ok := v.(string)
	require.True(t, ok, "%s does not point at a string", spec)
	out, err := json.Marshal(s)
	require.NoError(t, err)
	return out
}

var (
	sendChannelDataText = regexp.MustCompile(`session\.sendChannelData\('([^']*)'`)
	bareKey             = regexp.MustCompile(`([{,]\s*)([A-Za-z_$][\w$]*)\s*:`)
)

// healthBotActivity turns the Health Bot README's quoted sendChannelData statement into the
// message it sends: text = its first argument, channelData.tags = what JSON.stringify makes of
// the object literal (keys quoted, blanks removed: JSON.stringify writes no blanks and keeps
// the literal's key order, as json.Compact does).
func healthBotActivity(t *testing.T, readme []byte) []byte {
	t.Helper()
	m := sendChannelDataText.FindSubmatch(readme)
	require.NotNil(t, m, "no sendChannelData line")
	text := string(m[1])
	rest := readme[bytes.Index(readme, m[0]):]
	start := bytes.Index(rest, []byte("JSON.stringify("))
	require.GreaterOrEqual(t, start, 0, "no JSON.stringify")
	lit := balancedObject(t, rest[start+len("JSON.stringify("):])
	js := bareKey.ReplaceAll(lit, []byte(`$1"$2":`))
	var compact bytes.Buffer
	require.NoError(t, json.Compact(&compact, js), "%s", js)
	a := &activity.Activity{Type: activity.TypeMessage, Text: text}
	require.NoError(t, a.SetChannelDataField("tags", compact.String()))
	b, err := activity.Marshal(a)
	require.NoError(t, err)
	return b
}

// balancedObject returns the {…} at the start of b (after blanks), braces balanced.
func balancedObject(t *testing.T, b []byte) []byte {
	t.Helper()
	b = bytes.TrimLeft(b, " \t\n")
	require.True(t, len(b) > 0 && b[0] == '{')
	depth := 0
	inStr := byte(0)
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inStr != 0:
			if c == '\\' {
				i++
			} else if c == inStr {
				inStr = 0
			}
		case c == '"' || c == '\'':
			inStr = c
		case c == '{':
			depth++
		case c == '}':
			depth--
			if depth == 0 {
				return b[:i+1]
			}
		}
	}
	t.Fatalf("unbalanced object literal")
	return nil
}

// relaxJSON repairs the custom-channel sample as its README describes it: values written
// without quotes are quoted, and // comments are removed. Keys are left as they are (the
// "conversationcontext " key keeps its trailing blank).
func relaxJSON(b []byte) []byte {
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		line = quoteBareValue(line)
		out = append(out, stripComment(line))
	}
	return []byte(strings.Join(out, "\n"))
}

var bareValue = regexp.MustCompile(`^(\s*"[^"]*"\s*:\s*)([^\s"{\[\d\-tfn][^,]*?)(\s*,?\s*)$`)

func quoteBareValue(line string) string {
	m := bareValue.FindStringSubmatch(line)
	if m == nil {
		return line
	}
	return m[1] + strconv.Quote(m[2]) + m[3]
}

func stripComment(line string) string {
	inStr := false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case inStr && c == '\\':
			i++
		case c == '"':
			inStr = !inStr
		case !inStr && c == '/' && i+1 < len(line) && line[i+1] == '/':
			return strings.TrimRight(line[:i], " \t")
		}
	}
	return line
}

// TestRelaxJSON checks the repair on the lines of the custom-channel sample.
func TestRelaxJSON(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`    "serviceUrl": https://directline.botframework.com/,`, `    "serviceUrl": "https://directline.botframework.com/",`},
		{`            "email":email@email.com,`, `            "email":"email@email.com",`},
		{`        "id": "1234abcd",// userid which uniquely identify the user`, `        "id": "1234abcd",`},
		{`    "channelId": "directline",`, `    "channelId": "directline",`},
		{`        "conversationcontext ":{ // this holds`, `        "conversationcontext ":{`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			require.Equal(t, tc.want, string(relaxJSON([]byte(tc.in))))
		})
	}
}

// TestGoldenCoversRecordings fails when an escalation-shaped recording has no golden file:
// every file under omnichannel/, copilot/ and healthbot/ but the READMEs (the Health Bot
// README is itself the recording).
func TestGoldenCoversRecordings(t *testing.T) {
	root := filepath.Join(testutil.SharedDir(t), "recordings")
	used := map[string]bool{}
	files, err := filepath.Glob(filepath.Join("testdata", "*.golden"))
	require.NoError(t, err)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, line := range strings.Split(string(b), "\n") {
			for _, p := range []string{"# recording: ", "# transcript: "} {
				if v, ok := strings.CutPrefix(line, p); ok {
					rel, _, _ := strings.Cut(v, "#")
					used[rel] = true
				}
			}
		}
	}
	var missing []string
	for _, dir := range []string{"omnichannel", "copilot", "healthbot"} {
		require.NoError(t, filepath.WalkDir(filepath.Join(root, dir), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			rel = filepath.ToSlash(rel)
			if d.Name() == "README.md" && dir != "healthbot" {
				return nil
			}
			if !used[rel] {
				missing = append(missing, rel)
			}
			return nil
		}))
	}
	require.Empty(t, missing, fmt.Sprintf("recordings without a golden file: %v", missing))
}
