package routing

import (
	"strings"
)

// Operator is a comparison in a route-to-queue condition.
type Operator string

// The operators. They follow the condition builder of Omnichannel's route-to-queue rules
// ("Equals", "Does not equal", "Contains", "Greater than", "Contains data", …).
//
// Text comparisons ignore case, as Dataverse conditions do ("nurse" equals "Nurse"). Every
// operator except Exists and NotExists is false when the variable is missing or holds a value of
// another type than the variable's declared type (a type mismatch), so NotEquals and NotIn only
// match values that are present: the SQL-like behaviour of Dataverse conditions on null.
const (
	OpEquals         Operator = "equals"           // any type
	OpNotEquals      Operator = "not_equals"       // any type
	OpContains       Operator = "contains"         // string
	OpNotContains    Operator = "not_contains"     // string
	OpBeginsWith     Operator = "begins_with"      // string
	OpEndsWith       Operator = "ends_with"        // string
	OpIn             Operator = "in"               // any type, a list of values
	OpNotIn          Operator = "not_in"           // any type, a list of values
	OpGreaterThan    Operator = "greater_than"     // integer, number
	OpGreaterOrEqual Operator = "greater_or_equal" // integer, number
	OpLessThan       Operator = "less_than"        // integer, number
	OpLessOrEqual    Operator = "less_or_equal"    // integer, number
	OpExists         Operator = "exists"           // any type, no value ("Contains data")
	OpNotExists      Operator = "not_exists"       // any type, no value ("Does not contain data")
)

// operatorAliases maps the spellings accepted in YAML (after lower-casing and turning spaces and
// hyphens into underscores) to operators.
var operatorAliases = map[string]Operator{
	"equals": OpEquals, "eq": OpEquals,
	"not_equals": OpNotEquals, "does_not_equal": OpNotEquals, "ne": OpNotEquals,
	"contains": OpContains, "not_contains": OpNotContains, "does_not_contain": OpNotContains,
	"begins_with": OpBeginsWith, "ends_with": OpEndsWith,
	"in": OpIn, "not_in": OpNotIn,
	"greater_than": OpGreaterThan, "gt": OpGreaterThan,
	"greater_or_equal": OpGreaterOrEqual, "greater_than_or_equal": OpGreaterOrEqual, "ge": OpGreaterOrEqual,
	"less_than": OpLessThan, "lt": OpLessThan,
	"less_or_equal": OpLessOrEqual, "less_than_or_equal": OpLessOrEqual, "le": OpLessOrEqual,
	"exists": OpExists, "contains_data": OpExists,
	"not_exists": OpNotExists, "does_not_contain_data": OpNotExists,
}

// ParseOperator reads an operator as written in a configuration file: "greater than",
// "greater_than" and "Greater-Than" are the same operator.
func ParseOperator(s string) (Operator, bool) {
	k := strings.ToLower(strings.TrimSpace(s))
	k = strings.NewReplacer(" ", "_", "-", "_").Replace(k)
	op, ok := operatorAliases[k]
	return op, ok
}

// operand says what an operator compares with.
type operand int

const (
	operandOne  operand = iota // one value
	operandList                // a non-empty list
	operandNone                // nothing
)

func (op Operator) operand() operand {
	switch op {
	case OpIn, OpNotIn:
		return operandList
	case OpExists, OpNotExists:
		return operandNone
	}
	return operandOne
}

// accepts reports whether op applies to variables of type t.
func (op Operator) accepts(t Type) bool {
	switch op {
	case OpContains, OpNotContains, OpBeginsWith, OpEndsWith:
		return t == TypeString
	case OpGreaterThan, OpGreaterOrEqual, OpLessThan, OpLessOrEqual:
		return t == TypeInteger || t == TypeNumber
	}
	return true
}

// Condition is one node of a rule's condition tree: either a comparison (Var, Op and Value or
// Values) or a group, All (AND) or Any (OR), of nested conditions. Exactly one of Var, All and
// Any is set.
type Condition struct {
	Var    string      // the context variable, case-exact
	Op     Operator    // the comparison
	Value  Value       // the operand of a one-value operator
	Values []Value     // the operands of In and NotIn
	All    []Condition // every one must match
	Any    []Condition // at least one must match
	Pos    Pos         // where it was written, for errors
	at     fieldPos
}

// Match evaluates the condition against context variables.
func (c *Condition) Match(ctx map[string]Value) bool {
	switch {
	case len(c.All) > 0:
		for i := range c.All {
			if !c.All[i].Match(ctx) {
				return false
			}
		}
		return true
	case len(c.Any) > 0:
		for i := range c.Any {
			if c.Any[i].Match(ctx) {
				return true
			}
		}
		return false
	}
	v, present := ctx[c.Var]
	present = present && !v.IsZero()
	switch c.Op {
	case OpExists:
		return present && !(v.typ == TypeString && v.s == "")
	case OpNotExists:
		return !present || (v.typ == TypeString && v.s == "")
	}
	if !present {
		return false
	}
	switch c.Op {
	case OpEquals, OpNotEquals:
		eq, ok := equal(v, c.Value)
		return ok && eq == (c.Op == OpEquals)
	case OpIn, OpNotIn:
		found, comparable := false, false
		for _, w := range c.Values {
			eq, ok := equal(v, w)
			comparable = comparable || ok
			found = found || (ok && eq)
		}
		return comparable && found == (c.Op == OpIn)
	case OpContains, OpNotContains, OpBeginsWith, OpEndsWith:
		s, ok1 := v.Str()
		sub, ok2 := c.Value.Str()
		if !ok1 || !ok2 {
			return false
		}
		s, sub = strings.ToLower(s), strings.ToLower(sub)
		switch c.Op {
		case OpContains:
			return strings.Contains(s, sub)
		case OpNotContains:
			return !strings.Contains(s, sub)
		case OpBeginsWith:
			return strings.HasPrefix(s, sub)
		default:
			return strings.HasSuffix(s, sub)
		}
	case OpGreaterThan, OpGreaterOrEqual, OpLessThan, OpLessOrEqual:
		cmp, ok := compare(v, c.Value)
		if !ok {
			return false
		}
		switch c.Op {
		case OpGreaterThan:
			return cmp > 0
		case OpGreaterOrEqual:
			return cmp >= 0
		case OpLessThan:
			return cmp < 0
		default:
			return cmp <= 0
		}
	}
	return false
}

// equal compares two values of compatible types; ok is false on a type mismatch. Integers and
// numbers compare numerically, text ignoring case.
func equal(v, w Value) (eq, ok bool) {
	if isNumeric(v) && isNumeric(w) {
		c, _ := compare(v, w)
		return c == 0, true
	}
	if v.typ != w.typ {
		return false, false
	}
	switch v.typ {
	case TypeString:
		return strings.EqualFold(v.s, w.s), true
	case TypeBoolean:
		return v.b == w.b, true
	}
	return false, false
}

func isNumeric(v Value) bool { return v.typ == TypeInteger || v.typ == TypeNumber }

// compare orders two numeric values; ok is false unless both are numeric. Two integers compare
// exactly, without going through float64.
func compare(v, w Value) (int, bool) {
	if v.typ == TypeInteger && w.typ == TypeInteger {
		switch {
		case v.i < w.i:
			return -1, true
		case v.i > w.i:
			return 1, true
		}
		return 0, true
	}
	a, ok1 := v.Float()
	b, ok2 := w.Float()
	if !ok1 || !ok2 {
		return 0, false
	}
	switch {
	case a < b:
		return -1, true
	case a > b:
		return 1, true
	}
	return 0, true
}
