package app

import (
	"fmt"
	"io"

	"github.com/bfbridge/bfbridge/channels/module"
)

// WriteBanner tells the person who started the bridge where it is and how to reach it, from
// what each channel says about itself (module.Describer): the pages people open, then the
// endpoints programs use, the data directory and the health check, then the channels' notes
// (a generated Direct Line secret is printed there, once, for the operator — never logged).
func (a *App) WriteBanner(w io.Writer) {
	var b module.Banner
	for _, c := range a.channels {
		if d, ok := c.ch.(module.Describer); ok {
			cb := d.Describe()
			b.Pages = append(b.Pages, cb.Pages...)
			b.Endpoints = append(b.Endpoints, cb.Endpoints...)
			b.Notes = append(b.Notes, cb.Notes...)
		}
	}
	if a.cfg.Durable() {
		b.Endpoints = append(b.Endpoints, module.Line{Label: "Data", Value: a.cfg.DataDir})
	}
	b.Endpoints = append(b.Endpoints, module.Line{Label: "Health", Value: a.cfg.PublicURL + "/healthz"})
	if a.adminLn != nil {
		admin := "http://" + a.adminLn.Addr().String() + "/admin/v1/"
		if a.cfg.AdminToken == "" {
			admin += " (off: set BRIDGE_ADMIN_TOKEN)"
		}
		b.Endpoints = append(b.Endpoints, module.Line{Label: "Admin API", Value: admin})
	}
	fmt.Fprintf(w, "bfbridge is running.\n")
	for _, l := range append(b.Pages, b.Endpoints...) {
		fmt.Fprintf(w, "  %-18s%s\n", l.Label+":", l.Value)
	}
	for _, n := range b.Notes {
		fmt.Fprintln(w, n)
	}
}
