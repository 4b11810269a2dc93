package routing

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// baseConfig is a valid configuration; the cases below change one thing each. Line numbers
// matter: the cases expect problems on them.
const baseConfig = `workstreams:
  - name: chat
    variables:
      Topic: string
      Priority: integer
    rules:
      - name: nurse
        when: {var: Topic, op: equals, value: Nurse}
        queue: Nurse
    fallback_queue: General
    capacity: {profile: Chat}
queues:
  - name: Nurse
    agents: [nina]
  - name: General
    agents: [nina]
capacity_profiles:
  - {name: Chat, max_units: 2}
agents:
  - id: nina
    profiles: [Chat]
`

func TestBaseConfigIsValid(t *testing.T) {
	cfg, err := ParseConfig("cfg.yaml", []byte(baseConfig))
	require.NoError(t, err)
	require.Equal(t, "cfg.yaml", cfg.File)
	ws := cfg.Workstreams[0]
	require.Equal(t, []Presence{Available, Busy}, ws.AllowedPresences)
	require.Equal(t, 120*time.Second, ws.OfferTimeout)
	require.Equal(t, 2*time.Minute, ws.ReofferAfterDecline)
	require.Equal(t, HighestCapacity, cfg.Queues[0].Assignment)
	require.Equal(t, 1, cfg.Queues[0].Priority)
	require.Equal(t, Available, cfg.Agents[0].Presence)
	require.Equal(t, "nina", cfg.Agents[0].Name)
	require.Equal(t, 20, cfg.AverageWaitMinConversations)
	require.Equal(t, Pos{Line: 8, Column: 15}, ws.Rules[0].When.Pos)
	require.NoError(t, cfg.Validate(), "Validate is idempotent")
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name     string
		old, new string // replace old by new in baseConfig; empty old: new is the whole file
		want     string // expected in the error: file:line[:col]: problem
	}{
		{"malformed YAML", "    queue: Nurse\n", "    queue: [Nurse\n", "cfg.yaml:8: invalid YAML: did not find expected ',' or ']'"},
		{"tab indentation", "    fallback_queue: General", "\tfallback_queue: General", "cfg.yaml:9: invalid YAML: found a tab character"},
		{"empty file", "", "", "cfg.yaml:1: the file is empty"},
		{"comment only", "", "# nothing\n", "cfg.yaml:1: the file is empty"},
		{"not a mapping", "", "- a\n", "cfg.yaml:1:1: the configuration must be a mapping"},
		{"too deep", "", "workstreams: " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n", "cfg.yaml:1:78: the document nests deeper than 64 levels"},
		{"two documents", "", baseConfig + "---\nfoo: 1\n", "cfg.yaml:22:1: a second YAML document"},
		{"aliases", "    agents: [nina]\ncapacity", "    agents: &a [nina]\n  - name: X\n    agents: *a\ncapacity", "cfg.yaml:18:13: YAML aliases"},
		{"unknown top-level field", "agents:\n", "agent:\n", "cfg.yaml:19:1: unknown field \"agent\""},
		{"unknown workstream field", "    fallback_queue: General", "    colour: blue\n    fallback_queue: General", "cfg.yaml:10:5: unknown field \"colour\" in a workstream"},
		{"repeated field", "    fallback_queue: General", "    fallback_queue: General\n    fallback_queue: Nurse", "cfg.yaml:11:5: key \"fallback_queue\" appears twice in a workstream"},
		{"no workstreams", "workstreams:\n  - name: chat", "workstreams: []\nold:\n  - name: chat", "unknown field \"old\""},
		{"empty workstream list", "", "workstreams: []\n", "cfg.yaml:1:1: no workstreams"},
		{"empty workstream", "queues:\n", "  - name: empty\nqueues:\n", "cfg.yaml:12:5: workstream \"empty\" has no fallback_queue"},
		{"empty workstream capacity", "queues:\n", "  - name: empty\nqueues:\n", "cfg.yaml:12:5: workstream \"empty\" has no capacity"},
		{"workstream without name", "queues:\n", "  - fallback_queue: General\nqueues:\n", "cfg.yaml:12:5: workstream 2 has no name"},
		{"duplicate workstream", "queues:\n", "  - {name: chat, fallback_queue: General, capacity: {units: 1}}\nqueues:\n", "cfg.yaml:12:5: duplicate workstream \"chat\" (first defined at line 2)"},
		{"duplicate queue", "  - name: General\n    agents: [nina]", "  - name: Nurse\n    agents: [nina]", "cfg.yaml:15:5: duplicate queue \"Nurse\" (first defined at line 13)"},
		{"duplicate agent", "  - id: nina\n", "  - id: nina\n    capacity: 1\n  - id: nina\n", "cfg.yaml:22:5: duplicate agent \"nina\""},
		{"duplicate variable", "      Priority: integer\n", "      Priority: integer\n      Topic: integer\n", "cfg.yaml:6:7: key \"Topic\" appears twice"},
		{"duplicate rule name", "    fallback_queue:", "      - {name: nurse, when: {var: Topic, op: exists}, queue: General}\n    fallback_queue:", "cfg.yaml:10:9: workstream \"chat\": duplicate rule name \"nurse\""},
		{"unknown variable type", "Priority: integer", "Priority: money", "cfg.yaml:5:17: variable \"Priority\": unknown type \"money\""},
		{"unknown fallback queue", "fallback_queue: General", "fallback_queue: Generl", "cfg.yaml:10:21: workstream \"chat\": fallback_queue \"Generl\" is not a queue"},
		{"unknown rule queue", "        queue: Nurse", "        queue: Nurses", "cfg.yaml:9:16: workstream \"chat\", rule \"nurse\": queue \"Nurses\" is not a queue"},
		{"rule without queue", "        queue: Nurse\n", "", "cfg.yaml:7:9: workstream \"chat\", rule \"nurse\" has no queue"},
		{"rule without condition", "        when: {var: Topic, op: equals, value: Nurse}\n", "", "cfg.yaml:7:9: workstream \"chat\", rule \"nurse\" has no condition"},
		{"unknown bot", "    fallback_queue:", "    bot: robo\n    fallback_queue:", "cfg.yaml:10:10: workstream \"chat\": bot \"robo\" is not a bot"},
		{"agent as bot", "    fallback_queue:", "    bot: nina\n    fallback_queue:", "bot \"nina\" is not a bot"},
		{"unknown operator", "op: equals", "op: like", "cfg.yaml:8:32: workstream \"chat\", rule \"nurse\": unknown operator \"like\""},
		{"no operator", "var: Topic, op: equals, value: Nurse", "var: Topic, value: Nurse", "cfg.yaml:8:15: workstream \"chat\", rule \"nurse\": the condition on \"Topic\" has no op"},
		{"undeclared variable", "var: Topic,", "var: topic,", "cfg.yaml:8:21: workstream \"chat\", rule \"nurse\": variable \"topic\" is not declared in the workstream (names are case-sensitive: did you mean \"Topic\"?)"},
		{"text for an integer variable", "var: Topic, op: equals, value: Nurse", "var: Priority, op: equals, value: high", "cfg.yaml:8:50: workstream \"chat\", rule \"nurse\": integer variable \"Priority\" compared with string high"},
		{"integer for a text variable", "value: Nurse", "value: 3", "cfg.yaml:8:47: workstream \"chat\", rule \"nurse\": string variable \"Topic\" compared with integer 3: quote it (\"3\")"},
		{"boolean for a text variable", "value: Nurse", "value: true", "string variable \"Topic\" compared with boolean true"},
		{"float for an integer variable", "var: Topic, op: equals, value: Nurse", "var: Priority, op: equals, value: 2.5", "integer variable \"Priority\" compared with number 2.5"},
		{"integer too large is a number", "var: Topic, op: equals, value: Nurse", "var: Priority, op: equals, value: 99999999999999999999", "cfg.yaml:8:50: workstream \"chat\", rule \"nurse\": integer variable \"Priority\" compared with number 1e+20"},
		{"empty value", "value: Nurse", "value: ~", "cfg.yaml:8:47: the value is empty"},
		{"mapping value", "value: Nurse", "value: {a: 1}", "cfg.yaml:8:47: a value must be a single string"},
		{"operator for another type", "var: Topic, op: equals, value: Nurse", "var: Priority, op: contains, value: 3", "cfg.yaml:8:35: workstream \"chat\", rule \"nurse\": operator contains does not apply to integer variable \"Priority\""},
		{"greater than on text", "op: equals", "op: greater than", "operator greater_than does not apply to string variable \"Topic\""},
		{"in without a list", "op: equals", "op: in", "cfg.yaml:8:43: workstream \"chat\", rule \"nurse\": operator in needs a non-empty list of values"},
		{"in with an empty list", "op: equals, value: Nurse", "op: in, value: []", "operator in needs a non-empty list"},
		{"in with a wrong item", "op: equals, value: Nurse", "op: in, value: [Nurse, 7]", "cfg.yaml:8:51: workstream \"chat\", rule \"nurse\": string variable \"Topic\" compared with integer 7"},
		{"equals with a list", "value: Nurse", "value: [Nurse, Doctor]", "cfg.yaml:8:47: workstream \"chat\", rule \"nurse\": operator equals takes one value, not a list"},
		{"exists with a value", "op: equals", "op: exists", "cfg.yaml:8:47: workstream \"chat\", rule \"nurse\": operator exists takes no value"},
		{"equals without a value", "op: equals, value: Nurse", "op: equals", "operator equals on \"Topic\" needs a value"},
		{"var and all together", "{var: Topic, op: equals, value: Nurse}", "{var: Topic, op: exists, all: [{var: Topic, op: exists}]}", "cfg.yaml:8:15: workstream \"chat\", rule \"nurse\": a condition has exactly one of var"},
		{"empty all", "{var: Topic, op: equals, value: Nurse}", "{all: []}", "cfg.yaml:8:21: all needs at least one condition"},
		{"nested error", "{var: Topic, op: equals, value: Nurse}", "{any: [{var: Topic, op: exists}, {all: [{var: Priority, op: gt, value: x}]}]}", "cfg.yaml:8:86: workstream \"chat\", rule \"nurse\": integer variable \"Priority\" compared with string x"},
		{"condition not a mapping", "{var: Topic, op: equals, value: Nurse}", "Topic is Nurse", "cfg.yaml:8:15: a condition must be a mapping"},
		{"unknown condition field", "{var: Topic, op: equals, value: Nurse}", "{var: Topic, op: equals, values: [Nurse]}", "cfg.yaml:8:40: unknown field \"values\" in a condition"},
		{"capacity units and profile", "capacity: {profile: Chat}", "capacity: {profile: Chat, units: 10}", "cfg.yaml:11:15: workstream \"chat\": capacity is either units or a profile, not both"},
		{"unknown capacity profile", "capacity: {profile: Chat}", "capacity: {profile: Voice}", "cfg.yaml:11:15: workstream \"chat\": capacity profile \"Voice\" is not defined"},
		{"units not a number", "capacity: {profile: Chat}", "capacity: {units: lots}", "cfg.yaml:11:23: expected a whole number, not the text lots"},
		{"unknown allowed presence", "    fallback_queue:", "    allowed_presences: [Available, Lunch]\n    fallback_queue:", "cfg.yaml:10:36: unknown presence \"Lunch\""},
		{"offline allowed", "    fallback_queue:", "    allowed_presences: [Available, Offline]\n    fallback_queue:", "cfg.yaml:10:36: workstream \"chat\": Offline cannot be an allowed presence"},
		{"allowed presences not a list", "    fallback_queue:", "    allowed_presences: Available\n    fallback_queue:", "cfg.yaml:10:24: allowed_presences must be a list"},
		{"bad duration", "    fallback_queue:", "    offer_timeout: soon\n    fallback_queue:", "cfg.yaml:10:20: invalid duration \"soon\""},
		{"duration without unit", "    fallback_queue:", "    offer_timeout: 90\n    fallback_queue:", "cfg.yaml:10:20: expected a duration with a unit"},
		{"negative duration", "    fallback_queue:", "    reoffer_after_decline: -1m\n    fallback_queue:", "cfg.yaml:10:28: workstream \"chat\": reoffer_after_decline must be positive"},
		{"not a boolean", "    fallback_queue:", "    auto_accept: sometimes\n    fallback_queue:", "cfg.yaml:10:18: expected true or false"},
		{"unknown assignment method", "  - name: Nurse\n", "  - name: Nurse\n    assignment: random\n", "cfg.yaml:14:17: queue \"Nurse\": unknown assignment method \"random\""},
		{"negative priority", "  - name: Nurse\n", "  - name: Nurse\n    priority: -1\n", "cfg.yaml:14:15: queue \"Nurse\": priority must be positive"},
		{"unknown agent in queue", "agents: [nina]\n  - name: General", "agents: [nina, zed]\n  - name: General", "cfg.yaml:14:20: queue \"Nurse\": agent \"zed\" is not an agent"},
		{"agent listed twice", "agents: [nina]\n  - name: General", "agents: [nina, nina]\n  - name: General", "cfg.yaml:14:20: queue \"Nurse\": agent \"nina\" is listed twice"},
		{"unknown bot in queue", "agents: [nina]\n  - name: General", "agents: [nina]\n    bots: [robo]\n  - name: General", "cfg.yaml:15:12: queue \"Nurse\": bot \"robo\" is not a bot"},
		{"waiting time too short", "  - name: Nurse\n", "  - name: Nurse\n    overflow: {waiting_time: {exceeds: 30s, action: end_conversation}}\n", "cfg.yaml:14:40: queue \"Nurse\": waiting_time.exceeds must be between 1m and 2d"},
		{"waiting time too long", "  - name: Nurse\n", "  - name: Nurse\n    overflow: {waiting_time: {exceeds: 3d, action: end_conversation}}\n", "waiting_time.exceeds must be between 1m and 2d"},
		{"overflow to unknown queue", "  - name: Nurse\n", "  - name: Nurse\n    overflow: {waiting_time: {exceeds: 5m, action: transfer_to_queue, queue: Nowhere}}\n", "cfg.yaml:14:78: queue \"Nurse\": waiting_time: queue \"Nowhere\" is not a queue"},
		{"overflow into itself", "  - name: Nurse\n", "  - name: Nurse\n    overflow: {waiting_time: {exceeds: 5m, action: transfer_to_queue, queue: Nurse}}\n", "a queue cannot overflow into itself"},
		{"overflow transfer without queue", "  - name: Nurse\n", "  - name: Nurse\n    overflow: {waiting_time: {exceeds: 5m, action: transfer_to_queue}}\n", "cfg.yaml:14:30: queue \"Nurse\": waiting_time: transfer_to_queue needs a queue"},
		{"assign anyway while waiting", "  - name: Nurse\n", "  - name: Nurse\n    overflow: {waiting_time: {exceeds: 5m, action: assign_anyway}}\n", "cfg.yaml:14:52: queue \"Nurse\": waiting_time: assign_anyway is only for work_item_limit"},
		{"unknown overflow action", "  - name: Nurse\n", "  - name: Nurse\n    overflow: {work_item_limit: {limit: 5, action: voicemail}}\n", "cfg.yaml:14:52: queue \"Nurse\": work_item_limit: unknown action \"voicemail\""},
		{"no overflow action", "  - name: Nurse\n", "  - name: Nurse\n    overflow: {work_item_limit: {limit: 5}}\n", "cfg.yaml:14:33: queue \"Nurse\": work_item_limit has no action"},
		{"work item limit out of range", "  - name: Nurse\n", "  - name: Nurse\n    overflow: {work_item_limit: {limit: 101, action: end_conversation}}\n", "cfg.yaml:14:41: queue \"Nurse\": work_item_limit.limit must be between 1 and 100"},
		{"message on a transfer", "  - name: Nurse\n", "  - name: Nurse\n    overflow: {work_item_limit: {limit: 5, action: transfer_to_queue, queue: General, message: hi}}\n", "message is only for end_conversation"},
		{"unknown slug in overflow message", "  - name: Nurse\n", "  - name: Nurse\n    overflow: {work_item_limit: {limit: 5, action: end_conversation, message: 'Bye {Customer}'}}\n", "cfg.yaml:14:79: queue \"Nurse\": work_item_limit: unknown slug {Customer}"},
		{"profile max units", "max_units: 2", "max_units: 0", "cfg.yaml:18:29: capacity profile \"Chat\": max_units must be at least 1"},
		{"agent with unknown profile", "    profiles: [Chat]\n", "    profiles: [Chat, Voice]\n", "cfg.yaml:21:22: agent \"nina\": capacity profile \"Voice\" is not defined"},
		{"agent custom limit", "    profiles: [Chat]\n", "    profiles: {Chat: -1}\n", "cfg.yaml:21:16: agent \"nina\": custom limit of \"Chat\" must be positive"},
		{"agent unknown presence", "  - id: nina\n", "  - id: nina\n    presence: Lunch\n", "cfg.yaml:21:15: unknown presence \"Lunch\""},
		{"agent negative capacity", "  - id: nina\n", "  - id: nina\n    capacity: -5\n", "cfg.yaml:21:15: agent \"nina\": capacity must be positive"},
		{"bot with agent id", "agents:\n", "bots:\n  - id: nina\nagents:\n", "cfg.yaml:20:5: bot \"nina\" has the id of an agent"},
		{"unknown trigger", "agents:\n", "messages:\n  hello: hi\nagents:\n", "cfg.yaml:20:3: unknown automated message trigger \"hello\""},
		{"unknown slug", "agents:\n", "messages:\n  agent_joined: '{Agent} is here'\nagents:\n", "cfg.yaml:20:17: messages: agent_joined: unknown slug {Agent}"},
		{"message not text", "agents:\n", "messages:\n  agent_joined: 5\nagents:\n", "cfg.yaml:20:17: expected text, not the integer 5"},
		{"bad min conversations", "agents:\n", "average_wait_min_conversations: -3\nagents:\n", "cfg.yaml:19:33: average_wait_min_conversations must be positive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := tc.new
			if tc.old != "" {
				require.Contains(t, baseConfig, tc.old, "the case must change the base")
				doc = strings.Replace(baseConfig, tc.old, tc.new, 1)
			}
			cfg, err := ParseConfig("cfg.yaml", []byte(doc))
			require.Error(t, err)
			require.Nil(t, cfg)
			var ce *ConfigError
			require.True(t, errors.As(err, &ce))
			require.NotEmpty(t, ce.Problems)
			require.Contains(t, err.Error(), tc.want)
			if strings.HasPrefix(tc.want, "cfg.yaml:") {
				for _, p := range ce.Problems {
					require.Equal(t, "cfg.yaml", p.File)
				}
			}
		})
	}
}

func TestConfigReportsEveryProblem(t *testing.T) {
	doc := strings.NewReplacer("queue: Nurse", "queue: Nurses", "op: equals", "op: like", "fallback_queue: General", "fallback_queue: X").Replace(baseConfig)
	_, err := ParseConfig("cfg.yaml", []byte(doc))
	var ce *ConfigError
	require.True(t, errors.As(err, &ce))
	require.Len(t, ce.Problems, 3, err.Error())
	for i, line := range []int{8, 9, 10} { // in file order
		require.Equal(t, line, ce.Problems[i].Line, err.Error())
	}
}

func TestValidateProgrammaticConfig(t *testing.T) {
	cfg := &Config{
		Workstreams: []Workstream{{Name: "w", FallbackQueue: "q", Capacity: Capacity{Units: 10},
			Variables: []Variable{{Name: "Score", Type: TypeNumber}},
			Rules:     []Rule{{When: Condition{Var: "Score", Op: OpGreaterThan, Value: Integer(3)}, Queue: "q"}}}},
		Queues: []Queue{{Name: "q", Agents: []string{"a"}}},
		Agents: []Agent{{ID: "a", Capacity: 100}},
	}
	require.NoError(t, cfg.Validate())
	require.Equal(t, "rule 1", cfg.Workstreams[0].Rules[0].Name)
	require.Equal(t, TypeNumber, cfg.Workstreams[0].Rules[0].When.Value.Type(), "an integer operand of a number variable becomes a number")

	cfg.Queues[0].Agents = append(cfg.Queues[0].Agents, "ghost")
	err := cfg.Validate()
	require.EqualError(t, err, `routing config: config: queue "q": agent "ghost" is not an agent`)
}

func TestDefaultConfig(t *testing.T) {
	cfg := DefaultConfig()
	require.NoError(t, cfg.Validate())
	require.Equal(t, "default.yaml", cfg.File)
	require.Len(t, cfg.Workstreams, 1)
	ws := cfg.Workstreams[0]
	require.Equal(t, "chat", ws.Name)
	require.Equal(t, "sandbox-bot", ws.Bot)
	require.Equal(t, "General", ws.FallbackQueue)
	require.Contains(t, ws.Variables, Variable{Name: "BotHandoffTopic", Type: TypeString, Pos: ws.Variables[0].Pos})
	require.Equal(t, "Nurse", ws.Rules[0].Queue)
	require.Equal(t, Condition{Var: "BotHandoffTopic", Op: OpEquals, Value: String("Nurse"), Pos: ws.Rules[0].When.Pos, at: ws.Rules[0].When.at}, ws.Rules[0].When)
	var queues []string
	for _, q := range cfg.Queues {
		queues = append(queues, q.Name)
	}
	require.Equal(t, []string{"Nurse", "General"}, queues)
	require.GreaterOrEqual(t, len(cfg.Agents), 2)
	require.Equal(t, DefaultYAML(), defaultYAML)

	e, err := New(DefaultConfig(), nil)
	require.NoError(t, err)
	_, err = e.DeskConnected("nina") // the sandbox offers work to agents with a desk open
	require.NoError(t, err)
	d, err := e.Route(WorkItem{ConversationID: "c1"})
	require.NoError(t, err)
	require.Equal(t, "sandbox-bot", d.Bot, "the sandbox bot is the first user")
	d, err = e.Escalate("c1", map[string]Value{"BotHandoffTopic": String("Nurse")})
	require.NoError(t, err)
	require.Equal(t, "Nurse", d.Queue)
	require.Equal(t, "nina", d.Agent)
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "routing.yaml")
	require.NoError(t, os.WriteFile(path, []byte(baseConfig), 0o600))
	cfg, err := LoadConfig(path)
	require.NoError(t, err)
	require.Equal(t, path, cfg.File)

	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(baseConfig, "queue: Nurse", "queue: Nope", 1)), 0o600))
	_, err = LoadConfig(path)
	require.ErrorContains(t, err, path+":9:16: ")

	_, err = LoadConfig(filepath.Join(dir, "missing.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestParseDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{"90s": 90 * time.Second, "2d": 48 * time.Hour, "1d12h": 36 * time.Hour, "1h30m": 90 * time.Minute} {
		doc := strings.Replace(baseConfig, "    fallback_queue:", "    offer_timeout: "+in+"\n    fallback_queue:", 1)
		cfg, err := ParseConfig("cfg.yaml", []byte(doc))
		require.NoError(t, err, in)
		require.Equal(t, want, cfg.Workstreams[0].OfferTimeout, in)
	}
}

// TestDocExampleIsValid keeps the configuration example in doc.go honest.
func TestDocExampleIsValid(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(src), "// ParseConfig and LoadConfig")
	require.True(t, ok)
	example, _, _ := strings.Cut(after, "// Operators:")
	var yamlLines []string
	for _, line := range strings.Split(example, "\n") {
		if rest, ok := strings.CutPrefix(line, "//\t"); ok {
			yamlLines = append(yamlLines, rest)
		}
	}
	require.Greater(t, len(yamlLines), 20)
	cfg, err := ParseConfig("doc.go example", []byte(strings.Join(yamlLines, "\n")))
	require.NoError(t, err)
	require.Len(t, cfg.Workstreams[0].Rules, 2)
}

func TestConfigEdgeCases(t *testing.T) {
	t.Run("empty sections are absent ones", func(t *testing.T) {
		doc := strings.Replace(baseConfig, "queues:\n", "    allowed_presences:\n    bot:\nqueues:\n", 1) + "messages:\nbots:\n"
		cfg, err := ParseConfig("cfg.yaml", []byte(doc))
		require.NoError(t, err)
		require.Equal(t, []Presence{Available, Busy}, cfg.Workstreams[0].AllowedPresences)
	})
	t.Run("an unknown variable type is one problem", func(t *testing.T) {
		_, err := ParseConfig("cfg.yaml", []byte(strings.Replace(baseConfig, "Topic: string", "Topic: txt", 1)))
		var ce *ConfigError
		require.True(t, errors.As(err, &ce))
		require.Len(t, ce.Problems, 1, err.Error())
	})
	t.Run("synonyms of types in code", func(t *testing.T) {
		cfg := &Config{
			Workstreams: []Workstream{{Name: "w", FallbackQueue: "q", Capacity: Capacity{Units: 1},
				Variables: []Variable{{Name: "T", Type: "text"}},
				Rules:     []Rule{{When: Condition{Var: "T", Op: OpContains, Value: String("x")}, Queue: "q"}}}},
			Queues: []Queue{{Name: "q"}},
		}
		require.NoError(t, cfg.Validate())
		require.Equal(t, TypeString, cfg.Workstreams[0].Variables[0].Type)
	})
}
