package routing

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// leaf builds a comparison.
func leaf(v string, op Operator, operand ...Value) Condition {
	c := Condition{Var: v, Op: op}
	switch op.operand() {
	case operandList:
		c.Values = operand
	case operandOne:
		c.Value = operand[0]
	}
	return c
}

func TestOperators(t *testing.T) {
	ctx := map[string]Value{
		"Topic":    String("Nurse Line"),
		"Empty":    String(""),
		"Count":    Integer(5),
		"Score":    Number(2.5),
		"VIP":      Boolean(true),
		"Wrong":    String("abc"), // declared integer, holds text: a type mismatch
		"TextBool": String("yes"), // declared boolean, holds text
	}
	cases := []struct {
		name string
		cond Condition
		want bool
	}{
		// equals / not equals, each type
		{"string equals ignores case", leaf("Topic", OpEquals, String("nurse line")), true},
		{"string equals other", leaf("Topic", OpEquals, String("Billing")), false},
		{"string not equals", leaf("Topic", OpNotEquals, String("Billing")), true},
		{"string not equals same", leaf("Topic", OpNotEquals, String("NURSE LINE")), false},
		{"integer equals", leaf("Count", OpEquals, Integer(5)), true},
		{"integer equals number", leaf("Count", OpEquals, Number(5)), true},
		{"integer not equals", leaf("Count", OpNotEquals, Integer(6)), true},
		{"number equals", leaf("Score", OpEquals, Number(2.5)), true},
		{"number not equals", leaf("Score", OpNotEquals, Number(2.5)), false},
		{"boolean equals", leaf("VIP", OpEquals, Boolean(true)), true},
		{"boolean not equals", leaf("VIP", OpNotEquals, Boolean(true)), false},
		// type mismatches are false for both equals and not equals
		{"mismatch equals", leaf("Wrong", OpEquals, Integer(1)), false},
		{"mismatch not equals", leaf("Wrong", OpNotEquals, Integer(1)), false},
		{"bool mismatch equals", leaf("TextBool", OpEquals, Boolean(true)), false},
		{"bool mismatch not equals", leaf("TextBool", OpNotEquals, Boolean(false)), false},
		{"string compared with integer", leaf("Topic", OpEquals, Integer(1)), false},
		// missing variables
		{"missing equals", leaf("Nope", OpEquals, String("x")), false},
		{"missing not equals", leaf("Nope", OpNotEquals, String("x")), false},
		// text operators
		{"contains", leaf("Topic", OpContains, String("LINE")), true},
		{"contains not", leaf("Topic", OpContains, String("billing")), false},
		{"not contains", leaf("Topic", OpNotContains, String("billing")), true},
		{"not contains present", leaf("Topic", OpNotContains, String("nurse")), false},
		{"begins with", leaf("Topic", OpBeginsWith, String("nur")), true},
		{"begins with not", leaf("Topic", OpBeginsWith, String("line")), false},
		{"ends with", leaf("Topic", OpEndsWith, String("LINE")), true},
		{"ends with not", leaf("Topic", OpEndsWith, String("nurse")), false},
		{"contains on integer is a mismatch", leaf("Count", OpContains, String("5")), false},
		{"not contains on integer is a mismatch", leaf("Count", OpNotContains, String("7")), false},
		{"contains missing", leaf("Nope", OpContains, String("a")), false},
		// in / not in
		{"in string", leaf("Topic", OpIn, String("billing"), String("nurse line")), true},
		{"in string absent", leaf("Topic", OpIn, String("billing")), false},
		{"not in string", leaf("Topic", OpNotIn, String("billing")), true},
		{"not in string present", leaf("Topic", OpNotIn, String("Nurse Line")), false},
		{"in integer", leaf("Count", OpIn, Integer(1), Integer(5)), true},
		{"in number", leaf("Score", OpIn, Number(2.5)), true},
		{"in boolean", leaf("VIP", OpIn, Boolean(true)), true},
		{"not in boolean", leaf("VIP", OpNotIn, Boolean(false)), true},
		{"in mismatch", leaf("Wrong", OpIn, Integer(1)), false},
		{"not in mismatch", leaf("Wrong", OpNotIn, Integer(1)), false},
		{"in missing", leaf("Nope", OpIn, String("x")), false},
		{"not in missing", leaf("Nope", OpNotIn, String("x")), false},
		// ordering, integers and numbers
		{"integer greater than", leaf("Count", OpGreaterThan, Integer(4)), true},
		{"integer greater than equal", leaf("Count", OpGreaterThan, Integer(5)), false},
		{"integer greater or equal", leaf("Count", OpGreaterOrEqual, Integer(5)), true},
		{"integer less than", leaf("Count", OpLessThan, Integer(6)), true},
		{"integer less than equal", leaf("Count", OpLessThan, Integer(5)), false},
		{"integer less or equal", leaf("Count", OpLessOrEqual, Integer(5)), true},
		{"number greater than", leaf("Score", OpGreaterThan, Number(2.4)), true},
		{"number greater or equal", leaf("Score", OpGreaterOrEqual, Number(2.6)), false},
		{"number less than", leaf("Score", OpLessThan, Number(3)), true},
		{"number less or equal", leaf("Score", OpLessOrEqual, Number(2.5)), true},
		{"integer against number", leaf("Count", OpGreaterThan, Number(4.5)), true},
		{"greater than on text is a mismatch", leaf("Wrong", OpGreaterThan, Integer(0)), false},
		{"less than on boolean is a mismatch", leaf("VIP", OpLessThan, Integer(2)), false},
		{"greater than missing", leaf("Nope", OpGreaterThan, Integer(0)), false},
		// exists / not exists
		{"exists", leaf("Topic", OpExists), true},
		{"exists integer", leaf("Count", OpExists), true},
		{"exists boolean", leaf("VIP", OpExists), true},
		{"exists mismatched value", leaf("Wrong", OpExists), true},
		{"empty text does not exist", leaf("Empty", OpExists), false},
		{"missing does not exist", leaf("Nope", OpExists), false},
		{"not exists missing", leaf("Nope", OpNotExists), true},
		{"not exists empty text", leaf("Empty", OpNotExists), true},
		{"not exists present", leaf("Count", OpNotExists), false},
		{"unknown operator", leaf("Topic", Operator("like"), String("x")), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.cond.Match(ctx))
		})
	}
}

func TestGroups(t *testing.T) {
	ctx := map[string]Value{"Topic": String("billing"), "Priority": Integer(3), "VIP": Boolean(false)}
	yes := leaf("Topic", OpEquals, String("billing"))
	no := leaf("Priority", OpGreaterThan, Integer(5))
	cases := []struct {
		name string
		cond Condition
		want bool
	}{
		{"all true", Condition{All: []Condition{yes, yes}}, true},
		{"all with one false", Condition{All: []Condition{yes, no}}, false},
		{"any with one true", Condition{Any: []Condition{no, yes}}, true},
		{"any all false", Condition{Any: []Condition{no, no}}, false},
		{"nested any inside all", Condition{All: []Condition{yes, {Any: []Condition{no, yes}}}}, true},
		{"nested all inside any", Condition{Any: []Condition{no, {All: []Condition{yes, no}}}}, false},
		{"three levels", Condition{Any: []Condition{{All: []Condition{yes, {Any: []Condition{no, leaf("VIP", OpEquals, Boolean(false))}}}}}}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.cond.Match(ctx))
		})
	}
}

func TestParseOperator(t *testing.T) {
	for in, want := range map[string]Operator{
		"equals": OpEquals, "Not Equals": OpNotEquals, "does not equal": OpNotEquals, "greater-than": OpGreaterThan,
		"greater than or equal": OpGreaterOrEqual, "LE": OpLessOrEqual, "contains data": OpExists,
		"does not contain data": OpNotExists, " in ": OpIn, "not in": OpNotIn, "begins with": OpBeginsWith,
	} {
		got, ok := ParseOperator(in)
		require.True(t, ok, in)
		require.Equal(t, want, got, in)
	}
	_, ok := ParseOperator("like")
	require.False(t, ok)
}

func TestParsePresence(t *testing.T) {
	for in, want := range map[string]Presence{
		"available": Available, "BUSY": Busy, "Busy - DND": BusyDND, "busy_dnd": BusyDND, "Do not disturb": BusyDND,
		"appear away": Away, "Offline": Offline,
	} {
		got, ok := ParsePresence(in)
		require.True(t, ok, in)
		require.Equal(t, want, got)
	}
	_, ok := ParsePresence("Inactive")
	require.False(t, ok)
	require.Equal(t, 192360000, Available.Code())
	require.Equal(t, 192360002, BusyDND.Code())
	require.Equal(t, 192360004, Offline.Code())
	require.Zero(t, Presence("Lunch").Code())
}
