package main

// bridge admin list|show|export|erase: the admin API (app/admin.go) from the command line.
//
//	bridge admin list [--state S] [--channel C] [--since 2h|RFC3339] [--customer U] [--limit N] [--cursor C]
//	bridge admin show ID
//	bridge admin export ID [-o FILE]
//	bridge admin erase ID | --customer U
//
// Every subcommand takes --admin-url (default http://127.0.0.1:9090), --token (env
// BRIDGE_ADMIN_TOKEN) and --json (the API's JSON rather than a table).

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bfbridge/bfbridge/app"
)

// adminUsage is what `bridge admin --help` prints.
const adminUsage = `usage:
  bridge admin list [--state S] [--channel C] [--since 2h|RFC3339] [--customer U] [--limit N] [--cursor C]
  bridge admin show ID
  bridge admin export ID [-o FILE]
  bridge admin erase ID | --customer U

Reads and erases conversations through a running bridge's admin API (admin_listen). Every
subcommand takes --admin-url, --token (env BRIDGE_ADMIN_TOKEN) and --json; "bridge admin list
--help" lists a subcommand's flags.
`

// adminTimeout bounds one admin API call.
const adminTimeout = 60 * time.Second

// adminClient calls the admin API.
type adminClient struct {
	base, token string
	json        bool
	out         io.Writer
}

// adminFlags are the flags of every admin subcommand.
func adminFlags(name string, getenv func(string) string, stderr io.Writer) (*flag.FlagSet, *adminClient) {
	fs := flag.NewFlagSet("bridge admin "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &adminClient{}
	fs.StringVar(&c.base, "admin-url", "http://127.0.0.1:9090", "the bridge's admin listener")
	fs.StringVar(&c.token, "token", getenv("BRIDGE_ADMIN_TOKEN"), "the admin token (env BRIDGE_ADMIN_TOKEN)")
	fs.BoolVar(&c.json, "json", false, "print the API's JSON")
	return fs, c
}

// parseAll parses flags and positional arguments in any order.
func parseAll(fs *flag.FlagSet, args []string) (pos []string, err error) {
	for {
		if err := fs.Parse(args); err != nil {
			return nil, flagError(err)
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos, args = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
}

// runAdmin runs bridge admin SUBCOMMAND.
func runAdmin(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmds := map[string]func(context.Context, []string, func(string) string, io.Writer, io.Writer) error{
		"list": adminList, "show": adminShow, "export": adminExport, "erase": adminErase,
	}
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprint(stdout, adminUsage)
		return flag.ErrHelp
	}
	if len(args) == 0 || cmds[args[0]] == nil {
		return usageError{strings.TrimSpace(adminUsage)}
	}
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	return cmds[args[0]](ctx, args[1:], getenv, stdout, stderr)
}

// call sends a request to path and returns the body of a 2xx answer, or the API's error.
func (c *adminClient) call(ctx context.Context, method, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.base, "/")+path, nil)
	if err != nil {
		return nil, fmt.Errorf("admin API: %w", err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin API: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("admin API: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct{ Code, Message string }
		}
		if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
			return nil, fmt.Errorf("admin API: %d %s: %s", resp.StatusCode, e.Error.Code, e.Error.Message)
		}
		return nil, fmt.Errorf("admin API: %s", resp.Status)
	}
	return body, nil
}

// print writes the API's JSON when --json is set, and the table otherwise.
func (c *adminClient) print(body []byte, v any, table func(w *tabwriter.Writer)) error {
	if c.json {
		_, err := c.out.Write(body)
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	table(w)
	return w.Flush()
}

func adminList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, c := adminFlags("list", getenv, stderr)
	c.out = stdout
	state := fs.String("state", "", "only conversations in this state (bot, escalating, queued, agent, handedOff, ended)")
	channel := fs.String("channel", "", "only conversations with a leg on this channel")
	since := fs.String("since", "", "only conversations updated since: a duration back from now (2h) or an RFC 3339 time")
	customer := fs.String("customer", "", "only the conversations of this customer id")
	limit := fs.Int("limit", 50, "conversations per page (1-500)")
	cursor := fs.String("cursor", "", "the page after this cursor (printed after a full page)")
	if pos, err := parseAll(fs, args); err != nil || len(pos) > 0 {
		return errors.Join(err, usageErr("list", pos))
	}
	q := url.Values{}
	for k, v := range map[string]string{"state": *state, "channel": *channel, "customer": *customer, "cursor": *cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if *since != "" {
		t, err := parseSince(*since, time.Now())
		if err != nil {
			return err
		}
		q.Set("updated_since", t.UTC().Format(time.RFC3339))
	}
	q.Set("limit", strconv.Itoa(*limit))
	body, err := c.call(ctx, http.MethodGet, "/admin/v1/conversations?"+q.Encode())
	if err != nil {
		return err
	}
	var page app.ListPage
	return c.print(body, &page, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "ID\tSTATE\tCHANNELS\tCUSTOMER\tUPDATED")
		for _, s := range page.Conversations {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", s.ID, s.State, strings.Join(s.Channels, ","), s.Customer, s.Updated.UTC().Format(time.RFC3339))
		}
		if page.Next != "" {
			fmt.Fprintf(w, "more: --cursor %s\n", page.Next)
		}
	})
}

// parseSince reads a duration back from now, or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since %q: want a duration (2h) or an RFC 3339 time", s)
	}
	return t, nil
}

func usageErr(cmd string, pos []string) error {
	if len(pos) == 0 {
		return nil
	}
	return fmt.Errorf("bridge admin %s: unexpected arguments %q", cmd, pos)
}

// oneID parses the flags and the one conversation id of show and export.
func oneID(fs *flag.FlagSet, cmd string, args []string) (string, error) {
	pos, err := parseAll(fs, args)
	if err != nil {
		return "", err
	}
	if len(pos) != 1 {
		return "", fmt.Errorf("usage: bridge admin %s CONVERSATION_ID", cmd)
	}
	return pos[0], nil
}

func adminShow(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, c := adminFlags("show", getenv, stderr)
	c.out = stdout
	id, err := oneID(fs, "show", args)
	if err != nil {
		return err
	}
	body, err := c.call(ctx, http.MethodGet, "/admin/v1/conversations/"+url.PathEscape(id))
	if err != nil {
		return err
	}
	var d app.Detail
	return c.print(body, &d, func(w *tabwriter.Writer) { showTable(w, d) })
}

// showTable prints a conversation: its state, legs with their delivery, context and dead letters.
func showTable(w *tabwriter.Writer, d app.Detail) {
	cv := d.Conversation
	fmt.Fprintf(w, "conversation\t%s\nstate\t%s\ncreated\t%s\nupdated\t%s\n\n", cv.ID, cv.State,
		cv.Created.UTC().Format(time.RFC3339), cv.Updated.UTC().Format(time.RFC3339))
	fmt.Fprintln(w, "LEG\tUSER\tDELIVERED\tLAST\tBEHIND")
	for _, x := range d.Delivery {
		user := ""
		if x.Leg == cv.Customer.Key() {
			user = cv.Customer.User.ID
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\n", x.Leg, user, x.Cursor, x.Last, max(x.Last-x.Cursor, 0))
	}
	if len(cv.Context) > 0 {
		ctxJSON, _ := json.Marshal(cv.Context)
		fmt.Fprintf(w, "\ncontext\t%s\n", ctxJSON)
	}
	if len(cv.Dead) > 0 {
		fmt.Fprintln(w, "\nDEAD LETTER\tSEQ\tSTATUS\tREASON")
		for _, dl := range cv.Dead {
			fmt.Fprintf(w, "%s\t%d\t%d\t%s\n", dl.Leg, dl.Seq, dl.Status, dl.Reason)
		}
	}
}

func adminExport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, c := adminFlags("export", getenv, stderr)
	file := fs.String("o", "", "write the .transcript to this file rather than to standard output")
	id, err := oneID(fs, "export", args)
	if err != nil {
		return err
	}
	body, err := c.call(ctx, http.MethodGet, "/admin/v1/conversations/"+url.PathEscape(id)+"/transcript")
	if err != nil {
		return err
	}
	if *file == "" {
		_, err = stdout.Write(body)
		return err
	}
	return os.WriteFile(*file, body, 0o600)
}

func adminErase(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, c := adminFlags("erase", getenv, stderr)
	c.out = stdout
	customer := fs.String("customer", "", "erase every conversation of this customer id")
	pos, err := parseAll(fs, args)
	if err != nil {
		return err
	}
	path := ""
	switch {
	case *customer != "" && len(pos) == 0:
		path = "/admin/v1/customers/" + url.PathEscape(*customer) + "/conversations"
	case *customer == "" && len(pos) == 1:
		path = "/admin/v1/conversations/" + url.PathEscape(pos[0])
	default:
		return errors.New("usage: bridge admin erase CONVERSATION_ID | --customer CUSTOMER_ID")
	}
	body, err := c.call(ctx, http.MethodDelete, path)
	if err != nil {
		return err
	}
	var e app.Erased
	return c.print(body, &e, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "erased %d conversation(s)\n", len(e.Erased))
		for _, id := range e.Erased {
			fmt.Fprintln(w, id)
		}
	})
}
