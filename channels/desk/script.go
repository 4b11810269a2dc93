package desk

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/bfbridge/bfbridge/activity/handoff"
)

//go:embed sandbox-bot.yaml
var defaultScript []byte

// Script is what the sandbox bot says and does, read from YAML (see sandbox-bot.yaml).
type Script struct {
	// Name is the bot's display name. Default: "Sandbox Bot".
	Name string `yaml:"name"`
	// Greeting is sent when the customer joins. Empty: none.
	Greeting string `yaml:"greeting"`
	// Rules are tried in order on each customer message; the first whose pattern matches acts.
	Rules []Rule `yaml:"rules"`
	// Inactivity reminds, then ends, a conversation the customer stopped answering. Optional.
	Inactivity *Inactivity `yaml:"inactivity"`
}

// Rule is one pattern and what the bot does when a message matches it: reply, then sign in,
// escalate or end.
type Rule struct {
	// Match is a regular expression (RE2 syntax), matched case-insensitively against the text.
	Match string `yaml:"match"`
	// Reply is sent to the customer; {{text}} stands for the customer's words.
	Reply string `yaml:"reply"`
	// Escalate asks for a human agent.
	Escalate *Escalate `yaml:"escalate"`
	// End ends the conversation (after the reply).
	End bool `yaml:"end"`
	// SignIn sends the customer a sign-in card for an OAuth connection (see signin.go).
	SignIn *SignInRule `yaml:"signin"`

	re   *regexp.Regexp
	line int
}

// Escalate is a rule's request for a human agent.
type Escalate struct {
	// Dialect is how the bot asks, as the real bots do: "healthbot" (a message with Omnichannel
	// tags, Azure Health Bot's way), "botframework" (a handoff.initiate event, botbuilder's
	// EventFactory) or "copilot" (Copilot Studio's handoff.initiate with va_* variables).
	// Default: healthbot.
	Dialect string `yaml:"dialect"`
	// Note is for the agent only.
	Note string `yaml:"note"`
	// Context sets routing context variables (string, integer, number or boolean values).
	Context map[string]any `yaml:"context"`

	vars handoff.Variables
}

// Inactivity configures the bot's reminder and its end of a silent conversation.
type Inactivity struct {
	// RemindAfter is how long the customer may be silent before the reminder. 0: no reminder.
	RemindAfter time.Duration `yaml:"remind_after"`
	// Reminder is the reminder's text. Default: "Are you still there?".
	Reminder string `yaml:"reminder"`
	// EndAfter is how long the customer may be silent before the bot ends the conversation
	// (endOfConversation, code botTimedOut). 0: never.
	EndAfter time.Duration `yaml:"end_after"`
	// EndText is said when the bot ends it. Default: "I'm closing this conversation since it's been quiet."
	EndText string `yaml:"end_text"`
}

// DefaultScript returns the script the sandbox runs with no configuration.
func DefaultScript() *Script {
	s, err := ParseScript("sandbox-bot.yaml (built in)", defaultScript)
	if err != nil {
		panic(err) // the built-in script is tested
	}
	return s
}

// LoadScript reads a script file.
func LoadScript(path string) (*Script, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sandbox bot script: %w", err)
	}
	return ParseScript(path, b)
}

// ParseScript parses and validates a script. Errors name the file, the line and the problem.
func ParseScript(name string, data []byte) (*Script, error) {
	var s Script
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	lines := ruleLines(&root)
	var errs []error
	bad := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: line %d: %s", name, line, fmt.Sprintf(format, args...)))
	}
	if s.Name == "" {
		s.Name = "Sandbox Bot"
	}
	if len(s.Rules) == 0 {
		bad(1, "the script has no rules")
	}
	for i := range s.Rules {
		r := &s.Rules[i]
		if i < len(lines) {
			r.line = lines[i]
		}
		if r.Match == "" {
			bad(r.line, "rule %d has no match pattern", i+1)
			continue
		}
		re, err := regexp.Compile("(?i)" + r.Match)
		if err != nil {
			bad(r.line, "rule %d: match %q is not a valid regular expression: %v", i+1, r.Match, err)
			continue
		}
		r.re = re
		if r.Reply == "" && r.Escalate == nil && !r.End && r.SignIn == nil {
			bad(r.line, "rule %d does nothing: give it a reply, signin, escalate or end", i+1)
		}
		if r.SignIn != nil && (r.SignIn.Connection == "" || r.Escalate != nil || r.End) {
			bad(r.line, "rule %d: signin needs a connection, and no escalate or end beside it", i+1)
		}
		if e := r.Escalate; e != nil {
			switch e.Dialect {
			case "":
				e.Dialect = string(handoff.DialectHealthBot)
			case string(handoff.DialectHealthBot), string(handoff.DialectBotFramework), string(handoff.DialectCopilot):
			default:
				bad(r.line, "rule %d: escalate dialect %q must be healthbot, botframework or copilot", i+1, e.Dialect)
			}
			e.vars = handoff.Variables{}
			for k, v := range e.Context {
				switch v := v.(type) {
				case string:
					e.vars[k] = handoff.String(v)
				case int:
					e.vars[k] = handoff.Integer(int64(v))
				case float64:
					e.vars[k] = handoff.Number(v)
				case bool:
					e.vars[k] = handoff.Boolean(v)
				default:
					bad(r.line, "rule %d: context variable %q must be a string, number or boolean, not %T", i+1, k, v)
				}
			}
		}
	}
	if in := s.Inactivity; in != nil {
		if in.RemindAfter < 0 || in.EndAfter < 0 {
			bad(1, "inactivity durations cannot be negative")
		}
		if in.EndAfter > 0 && in.RemindAfter >= in.EndAfter {
			bad(1, "inactivity remind_after (%s) must come before end_after (%s)", in.RemindAfter, in.EndAfter)
		}
		if in.Reminder == "" {
			in.Reminder = "Are you still there?"
		}
		if in.EndText == "" {
			in.EndText = "I'm closing this conversation since it's been quiet."
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &s, nil
}

// ruleLines returns the line of each item of the top-level "rules" sequence.
func ruleLines(root *yaml.Node) []int {
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return nil
	}
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "rules" && m.Content[i+1].Kind == yaml.SequenceNode {
			var out []int
			for _, item := range m.Content[i+1].Content {
				out = append(out, item.Line)
			}
			return out
		}
	}
	return nil
}

// match returns the first rule whose pattern matches text.
func (s *Script) match(text string) *Rule {
	for i := range s.Rules {
		if s.Rules[i].re.MatchString(text) {
			return &s.Rules[i]
		}
	}
	return nil
}
