package runner

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"
)

// Report is the outcome of a run against one target.
type Report struct {
	Target  string   `json:"target"`
	Domain  string   `json:"domain"`         // the Direct Line base URL used
	Note    string   `json:"note,omitempty"` // how it was found, when it was not as given
	Results []Result `json:"results"`
}

// Row is one requirement's line of the summary table.
type Row struct {
	Requirement string   `json:"requirement"`
	Title       string   `json:"title"`
	Status      Status   `json:"status"`
	Reason      string   `json:"reason,omitempty"`
	Passed      []string `json:"passed,omitempty"`
	Failed      []string `json:"failed,omitempty"`
	NotRun      []string `json:"notRun,omitempty"` // unsupported, or not reached because the scenario failed first
}

// Rows sums the results up per requirement: fail when a scenario broke it, pass when one checked
// it and none broke it, unsupported when none could check it — each with the reason.
func (r *Report) Rows() []Row {
	rows := map[string]*Row{}
	row := func(id string, res Result) *Row {
		if rw, ok := rows[id]; ok {
			return rw
		}
		title := res.titles[id]
		if known, ok := requirements[id]; ok {
			title = known.Title
		}
		rw := &Row{Requirement: id, Title: title}
		rows[id] = rw
		return rw
	}
	failReason := map[string]string{}
	notRunReason := map[string]string{}
	for _, res := range r.Results {
		broke := map[string]string{}
		for _, f := range res.Failures {
			for _, id := range f.Requirements {
				if _, ok := broke[id]; !ok {
					broke[id] = f.Message
				}
			}
		}
		ids := append([]string(nil), res.Requirements...)
		for id := range broke {
			if !contains(ids, id) {
				ids = append(ids, id)
			}
		}
		for _, id := range ids {
			rw := row(id, res)
			switch msg, ok := broke[id]; {
			case ok:
				rw.Failed = append(rw.Failed, res.Scenario)
				if _, seen := failReason[id]; !seen {
					failReason[id] = res.Scenario + ": " + msg
					if res.KnownBug != "" {
						failReason[id] = "known bug: " + failReason[id]
					}
				}
			case res.Status == Pass || (res.Status == Fail && !res.Aborted):
				// every check of this requirement held, whatever else failed
				rw.Passed = append(rw.Passed, res.Scenario)
			default:
				rw.NotRun = append(rw.NotRun, res.Scenario)
				if _, seen := notRunReason[id]; !seen {
					why := res.Reason
					if res.Status == Fail {
						why = "not reached: it failed first on " + res.Reason
					}
					notRunReason[id] = res.Scenario + ": " + why
				}
			}
		}
	}
	out := make([]Row, 0, len(rows))
	ids := make([]string, 0, len(rows))
	for id := range rows {
		ids = append(ids, id)
	}
	sortRequirements(ids)
	for _, id := range ids {
		rw := rows[id]
		optional := requirements[id].Optional
		switch {
		case len(rw.Failed) > 0 && optional:
			rw.Status, rw.Reason = Unsupported, "optional, not supported: "+failReason[id]
		case len(rw.Failed) > 0:
			rw.Status, rw.Reason = Fail, failReason[id]
		case len(rw.Passed) > 0:
			rw.Status = Pass
			if len(rw.NotRun) > 0 {
				rw.Reason = fmt.Sprintf("%d of %d scenarios not run: %s", len(rw.NotRun), len(rw.NotRun)+len(rw.Passed), notRunReason[id])
			}
		default:
			rw.Status, rw.Reason = Unsupported, notRunReason[id]
		}
		out = append(out, *rw)
	}
	return out
}

// Counts returns how many scenarios passed, failed and were unsupported.
func (r *Report) Counts() (pass, fail, unsupported int) {
	for _, res := range r.Results {
		switch res.Status {
		case Pass:
			pass++
		case Fail:
			fail++
		default:
			unsupported++
		}
	}
	return pass, fail, unsupported
}

// ProgressLine is the one-line account of a scenario printed as the run goes.
func ProgressLine(res Result) string {
	word := map[Status]string{Pass: "PASS", Fail: "FAIL", Unsupported: "SKIP"}[res.Status]
	line := fmt.Sprintf("%-4s %-40s %-22s %5dms", word, res.Scenario, strings.Join(res.Requirements, ","), res.Millis)
	if res.Reason != "" {
		line += "  " + oneLine(res.Reason, 200)
	}
	return line
}

// WriteText writes the summary table for people: requirement, result, reason.
func (r *Report) WriteText(w io.Writer) error {
	pass, fail, unsup := r.Counts()
	fmt.Fprintf(w, "\nDirect Line conformance of %s\n", r.Domain)
	if r.Note != "" {
		fmt.Fprintf(w, "  (%s)\n", r.Note)
	}
	fmt.Fprintf(w, "scenarios: %d passed, %d failed, %d unsupported\n\n", pass, fail, unsup)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REQUIREMENT\tRESULT\tREASON")
	for _, rw := range r.Rows() {
		fmt.Fprintf(tw, "%s %s\t%s\t%s\n", rw.Requirement, oneLine(rw.Title, 48), rw.Status, oneLine(rw.Reason, 140))
	}
	return tw.Flush()
}

// WriteJSON writes the report and its table as JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		*Report
		Table []Row `json:"table"`
	}{r, r.Rows()})
}

// WriteMarkdown writes the summary table as Markdown.
func (r *Report) WriteMarkdown(w io.Writer) error {
	return CompareMarkdown(w, []string{r.Domain}, []*Report{r})
}

// CompareMarkdown writes one Markdown table with a column per report: each requirement's result
// and reason on each target.
func CompareMarkdown(w io.Writer, names []string, reports []*Report) error {
	type cell struct {
		title string
		text  []string
	}
	cells := map[string]*cell{}
	var ids []string
	for i, rep := range reports {
		for _, rw := range rep.Rows() {
			c, ok := cells[rw.Requirement]
			if !ok {
				c = &cell{title: rw.Title, text: make([]string, len(reports))}
				cells[rw.Requirement] = c
				ids = append(ids, rw.Requirement)
			}
			text := string(rw.Status)
			if rw.Status == Fail {
				text = "**fail**"
			}
			if rw.Reason != "" {
				text += ": " + oneLine(uuidPattern.ReplaceAllString(rw.Reason, "<uuid>"), 160)
			}
			c.text[i] = text
		}
	}
	sortRequirements(ids)
	var b strings.Builder
	b.WriteString("| Requirement |")
	for _, n := range names {
		b.WriteString(" " + mdEscape(n) + " |")
	}
	b.WriteString("\n|---|")
	for range names {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, id := range ids {
		c := cells[id]
		b.WriteString("| " + id + " " + mdEscape(c.title) + " |")
		for _, t := range c.text {
			if t == "" {
				t = "not run"
			}
			b.WriteString(" " + mdEscape(t) + " |")
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// uuidPattern finds the random ids some targets give activities, kept out of the README table
// so that it changes only when results do.
var uuidPattern = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// oneLine flattens s to one line of at most n characters.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
