package app

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/bfbridge/bfbridge/channels/module"
)

// plan is what a configuration runs: the enabled channels in registry order (one bot channel
// among them), and the escalation target.
type plan struct {
	channels []module.Registration
	bot      module.Registration
	target   string
}

var errNoBot = errors.New("bot: no bot channel is registered")

// plan works out what c runs from the registry and the sections.
func (c *Config) plan() (plan, error) {
	var p plan
	bot, err := c.botChannel()
	if err != nil {
		return p, err
	}
	p.bot = bot
	for _, r := range c.regs {
		if r.Enabled(c.sections[r.Section]) && (r.Role != module.Bot || r.Name == bot.Name) {
			p.channels = append(p.channels, r)
		}
	}
	p.target, err = c.target()
	return p, err
}

// botChannel returns the bot channel: the enabled one, else the fallback.
func (c *Config) botChannel() (module.Registration, error) {
	var on, fallback []module.Registration
	for _, r := range c.regs {
		switch {
		case r.Role != module.Bot || !r.Enabled(c.sections[r.Section]):
		case r.Fallback:
			fallback = append(fallback, r)
		default:
			on = append(on, r)
		}
	}
	switch {
	case len(on) > 1:
		return module.Registration{}, fmt.Errorf("bot: set %s (%s) or %s (%s), not both", on[0].Section, on[0].Name, on[1].Section, on[1].Name)
	case len(on) == 1:
		return on[0], nil
	case len(fallback) > 0:
		return fallback[0], nil
	}
	return module.Registration{}, errNoBot
}

// target returns the escalation target: escalation.target, checked, or its default (the
// first enabled contact center, else none).
func (c *Config) target() (string, error) {
	valid := []string{module.NoEscalation}
	var enabled []string
	section := map[string]string{}
	for _, r := range c.regs {
		if r.Role != module.ContactCenter {
			continue
		}
		valid = append(valid, r.Name)
		section[r.Name] = r.Section
		if r.Enabled(c.sections[r.Section]) {
			enabled = append(enabled, r.Name)
		}
	}
	t := c.Escalation.Target
	switch {
	case t == "" && len(enabled) > 0:
		return enabled[0], nil
	case t == "" || t == module.NoEscalation:
		return module.NoEscalation, nil
	case !slices.Contains(valid, t):
		return "", fmt.Errorf("escalation.target %q is not one of: %s", t, strings.Join(valid, ", "))
	case !slices.Contains(enabled, t):
		return "", fmt.Errorf("escalation.target %q: that contact center is off in the %s: section", t, section[t])
	}
	return t, nil
}
