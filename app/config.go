// Package app wires the bridge together: the configuration (core settings and each registered
// channel's own section), the store, the Hub, the channels of the registry (Channels) and the
// HTTP server, with a uniform lifecycle and graceful shutdown. cmd/bridge and the end-to-end
// tests use it.
package app

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/bfbridge/bfbridge/channels/module"
	"github.com/bfbridge/bfbridge/internal/envtag"
)

// Config is the bridge's configuration: the core settings below and one section per
// registered channel (Section). Each source wins over the one before: defaults, the YAML file
// (LoadFile), the environment (ApplyEnv: the variables named by the fields' env tags), flags
// (Set). Copies of a Config share its sections.
type Config struct {
	// Listen is the address the HTTP server binds. Default: 127.0.0.1:8080.
	Listen string `yaml:"listen" env:"BRIDGE_LISTEN"`
	// PublicURL is the base URL clients and bots reach the bridge at (streamUrl, serviceUrl).
	// Default: http://<listen>.
	PublicURL string `yaml:"public_url" env:"BRIDGE_PUBLIC_URL"`
	// LogLevel is debug, info, warn or error. Default: info.
	LogLevel string `yaml:"log_level" env:"BRIDGE_LOG_LEVEL"`
	// ShutdownTimeout bounds a graceful shutdown. Default: 20s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// ReadTimeout bounds reading one whole request, headers and body: a client that sends its
	// headers and then holds the body back is cut off when it runs out, whatever the path, so
	// that idle sockets cannot pile up. It also bounds an upload's transfer. Websocket streams
	// are not affected once upgraded. Default: 30s.
	ReadTimeout time.Duration `yaml:"read_timeout"`

	// AdminListen is the address of the admin listener: /livez, /readyz, /metrics and the admin
	// API under /admin/v1/ (conversations: list, show, export, erase). Keep it off the public
	// network. Default: 127.0.0.1:9090.
	AdminListen string `yaml:"admin_listen" env:"BRIDGE_ADMIN_LISTEN"`
	// AdminToken is the bearer token of the admin API; without it the API answers 403 (the
	// probes still answer). Required when AdminListen is not a loopback address. Env only:
	// BRIDGE_ADMIN_TOKEN.
	AdminToken string `yaml:"-" env:"BRIDGE_ADMIN_TOKEN"`
	// ReadyCache is how long GET /readyz reuses its checks of the outside services the channels
	// need (contact centers, bot token sources), so that a probe storm reaches them at most once
	// in that time. The store's write check is not cached. Default: 10s.
	ReadyCache time.Duration `yaml:"ready_cache"`

	// AllowUnauthenticatedPublic lets the bridge listen on an address other than loopback while
	// a channel leaves routes open without credentials (anonymous bot mode: bot.endpoint without
	// bot.app_id; the sandbox contact center). Without it, start-up fails naming the risk.
	// Default: false.
	AllowUnauthenticatedPublic bool `yaml:"allow_unauthenticated_public" env:"BRIDGE_ALLOW_UNAUTHENTICATED_PUBLIC"`

	// Store is where conversations and their logs live: "sqlite" (durable, in DataDir),
	// "redis" (durable, on the server of Redis.URL, shared by every instance on it: the generated
	// secret and signing key are kept there too, the first instance's for all) or "memory" (lost
	// on restart); see StoreNames. Env BRIDGE_STORE. Default: sqlite.
	Store string `yaml:"store" env:"BRIDGE_STORE"`
	// DataDir holds the durable store, the generated Direct Line secret and the bot-signing
	// key. Default: ./bridge-data.
	DataDir string `yaml:"data_dir" env:"BRIDGE_DATA_DIR"`
	// Retention is how long a conversation is kept after its last activity. Default: 24h.
	Retention time.Duration `yaml:"retention"`
	// Redis is the server of the redis store.
	Redis Redis `yaml:"redis"`

	// Escalation says where conversations go when the bot asks for a human.
	Escalation Escalation `yaml:"escalation"`
	// Inactivity is what the bridge does when a customer goes quiet.
	Inactivity Inactivity `yaml:"inactivity"`
	// Bot is the bot as the Hub sees it, whichever channel reaches it. Its keys are in the
	// bot: section, beside the bot channels' own.
	Bot BotAccount `yaml:"-"`

	regs     []module.Registration
	sections map[string]any // by section path
}

// BotAccount is the bot as customers see it and the Hub delivers to it.
type BotAccount struct {
	// ID is the bot's account id. Default: "bot".
	ID string `yaml:"id"`
	// Name is the bot's display name. Default: what the bot channel calls it (the sandbox
	// bot's script), else "Bot".
	Name string `yaml:"name"`
	// Timeout bounds one delivery to the bot. Default: 15s (Azure Bot Service's).
	Timeout time.Duration `yaml:"timeout"`
}

// Redis is the Redis server of the redis store: one node (URL), a Redis Cluster (URL's
// credentials and TLS, Cluster's seed nodes) or a Sentinel-managed primary (URL's credentials,
// TLS and database, Sentinel's master and sentinels). See app/redis.go.
type Redis struct {
	// URL is the server's address, as redis.ParseURL reads it:
	// redis://[user:password@]host:port[/db] (rediss:// for TLS). Required with store: redis;
	// with cluster or sentinel only its user, password, TLS and database count.
	URL string `yaml:"url" env:"BRIDGE_REDIS_URL"`
	// Cluster lists seed nodes (host:port) of a Redis Cluster (go-redis ClusterOptions.Addrs).
	// Every key of one conversation shares a hash slot. Env BRIDGE_REDIS_CLUSTER (comma-separated).
	Cluster []string `yaml:"cluster" env:"BRIDGE_REDIS_CLUSTER"`
	// Sentinel names the primary that Redis Sentinel manages (go-redis FailoverOptions).
	Sentinel RedisSentinel `yaml:"sentinel"`
}

// RedisSentinel is a Sentinel-managed primary.
type RedisSentinel struct {
	// MasterName is the primary's name in the sentinels' configuration.
	MasterName string `yaml:"master_name" env:"BRIDGE_REDIS_SENTINEL_MASTER"`
	// Addrs are the sentinels (host:port). Env BRIDGE_REDIS_SENTINEL_ADDRS (comma-separated).
	Addrs []string `yaml:"addrs" env:"BRIDGE_REDIS_SENTINEL_ADDRS"`
	// Password authenticates to the sentinels, when they need it. Env BRIDGE_REDIS_SENTINEL_PASSWORD.
	Password string `yaml:"password" env:"BRIDGE_REDIS_SENTINEL_PASSWORD"`
}

// Escalation says where conversations go when the bot asks for a human.
type Escalation struct {
	// Target is the contact center that takes them: the name of an enabled contact-center
	// channel ("desk", the sandbox; later "dynamics", "salesforce"), or "none": the bridge is
	// then a plain Direct Line service and passes handoff signals through to the customer's
	// client. A handoff command is never shown to the customer while a contact center is
	// configured. Default: desk while the sandbox is on, else none.
	Target string `yaml:"target" env:"BRIDGE_ESCALATION_TARGET"`
}

// Inactivity is what the bridge does when a customer goes quiet while the bot or the sandbox
// contact center has the conversation (a contact center that owns routing, such as
// Omnichannel, runs its own timeout rules). Both are off by default; the sandbox bot has
// inactivity rules of its own in its script. It is the Hub's bridge.Inactivity, in the file.
type Inactivity struct {
	// RemindAfter sends Reminder after this much silence. 0: no reminder.
	RemindAfter time.Duration `yaml:"remind_after"`
	// Reminder is the reminder's text. Default: "Are you still there?".
	Reminder string `yaml:"reminder"`
	// CloseAfter ends the conversation after this much silence (endOfConversation botTimedOut;
	// EndConversation toward Omnichannel). 0: never.
	CloseAfter time.Duration `yaml:"close_after"`
	// CloseText is said when it closes. Default: "This conversation was closed after a period of inactivity."
	CloseText string `yaml:"close_text"`
}

// Defaults returns the configuration of the registry's channels (Channels) with every default
// filled in (but no secret yet).
func Defaults() Config { return DefaultsOf(Channels) }

// DefaultsOf returns the defaults of a bridge running the channels of regs (a registry of a
// test's own, say).
func DefaultsOf(regs []module.Registration) Config {
	c := Config{
		Listen: "127.0.0.1:8080", AdminListen: "127.0.0.1:9090", LogLevel: "info", ShutdownTimeout: 20 * time.Second,
		ReadTimeout: 30 * time.Second, ReadyCache: 10 * time.Second, Store: "sqlite", DataDir: "bridge-data", Retention: 24 * time.Hour,
		Bot:  BotAccount{ID: "bot", Timeout: 15 * time.Second},
		regs: regs, sections: map[string]any{},
	}
	for _, r := range regs {
		if _, ok := c.sections[r.Section]; !ok {
			c.sections[r.Section] = r.NewSection()
		}
	}
	return c
}

// Section returns the section at path (a pointer to the registered channel's section type),
// or nil.
func (c *Config) Section(path string) any { return c.sections[path] }

// SectionOf returns the section at path as a *T. It panics when there is no such section of
// type T: a programming error.
func SectionOf[T any](c *Config, path string) *T {
	s, ok := c.sections[path].(*T)
	if !ok {
		panic(fmt.Sprintf("app: no %T section at %q", (*T)(nil), path))
	}
	return s
}

// paths returns the section paths in registry order.
func (c *Config) paths() []string {
	var paths []string
	seen := map[string]bool{}
	for _, r := range c.regs {
		if !seen[r.Section] {
			seen[r.Section] = true
			paths = append(paths, r.Section)
		}
	}
	return paths
}

// document returns the file's shape: the core settings at the top, Bot at bot:, and every
// section at its path.
func (c *Config) document() *document {
	root := &document{inline: []any{c}}
	bot := root.at("bot")
	bot.inline = append(bot.inline, &c.Bot)
	for _, p := range c.paths() {
		d := root.at(p)
		d.inline = append(d.inline, c.sections[p])
	}
	return root
}

// LoadFile reads a YAML file over c. Unknown keys are errors; every error names the file and
// line, in the reader's words (configfile.go).
func (c *Config) LoadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	d := c.document()
	n, err := parseFile(path, b, d)
	if err != nil || n == nil {
		return err
	}
	if err := n.Decode(d.value()); err != nil {
		// parseFile has checked every key and value; what is left is yaml's own wording
		msg := unknownField.ReplaceAllString(strings.TrimPrefix(err.Error(), "yaml: "), "$1")
		return fmt.Errorf("config %s: %s", path, msg)
	}
	return nil
}

// unknownField matches yaml's error for an unknown key, which names the Go type the file is
// decoded into (the document's, of no use to the reader).
var unknownField = regexp.MustCompile(`(field \S+ not found) in type .*`)

// targets returns the core settings and every section: what env tags are looked up in.
func (c *Config) targets() []any {
	t := []any{c}
	for _, p := range c.paths() {
		t = append(t, c.sections[p])
	}
	return t
}

// ApplyEnv overrides c with the variables named in its fields' env tags that getenv returns
// non-empty.
func (c *Config) ApplyEnv(getenv func(string) string) error {
	for _, t := range c.targets() {
		if err := envtag.Apply(t, getenv); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	return nil
}

// Set sets the setting that the environment variable name overrides: how flags set what they
// stand for.
func (c *Config) Set(name, value string) error {
	for _, t := range c.targets() {
		if ok, err := envtag.Set(t, name, value); ok {
			return err
		}
	}
	return fmt.Errorf("config: no setting is named by %s", name)
}

// EnvNames returns the environment variables the configuration reads.
func (c *Config) EnvNames() []string {
	var names []string
	for _, t := range c.targets() {
		names = append(names, envtag.Names(t)...)
	}
	return names
}

// Finish fills what is derived from other settings: the public URL from the listen address.
func (c *Config) Finish() {
	if c.PublicURL == "" {
		host, port, err := net.SplitHostPort(c.Listen)
		if err == nil {
			if host == "" || host == "0.0.0.0" || host == "::" {
				host = "127.0.0.1"
			}
			c.PublicURL = "http://" + net.JoinHostPort(host, port)
		}
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
}

// Validate checks the configuration at start-up: the core settings, every section (each
// section's Validate), the bot channel and the escalation target.
func (c *Config) Validate() error {
	errs := c.validateCore()
	for _, p := range c.paths() {
		if v, ok := c.sections[p].(interface{ Validate() error }); ok {
			if err := v.Validate(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, r := range c.regs {
		if reflect.TypeOf(r.NewSection()) != reflect.TypeOf(c.sections[r.Section]) {
			errs = append(errs, fmt.Errorf("channel %s: section %s is a %T, not its %T", r.Name, r.Section, c.sections[r.Section], r.NewSection()))
		}
	}
	if p, err := c.plan(); err != nil {
		errs = append(errs, err)
	} else {
		errs = append(errs, c.validateExposure(p)...)
		errs = append(errs, c.validateRequires(p)...)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// validateCore checks the settings that are not a channel's.
func (c *Config) validateCore() []error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen %q: %w", c.Listen, err))
	}
	if u, err := url.Parse(c.PublicURL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		errs = append(errs, fmt.Errorf("public_url %q must be an absolute http(s) URL", c.PublicURL))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level %q must be debug, info, warn or error", c.LogLevel))
	}
	if k, ok := stores[c.Store]; !ok {
		errs = append(errs, fmt.Errorf("store %q must be %s", c.Store, storeList()))
	} else if k.durable && c.DataDir == "" {
		errs = append(errs, fmt.Errorf("data_dir is required with the %s store", c.Store))
	}
	if c.Store == "redis" {
		errs = append(errs, c.Redis.validate())
	}
	if in := c.Inactivity; in.RemindAfter < 0 || in.CloseAfter < 0 || (in.CloseAfter > 0 && in.RemindAfter >= in.CloseAfter) {
		errs = append(errs, errors.New("inactivity: durations must be positive and remind_after must come before close_after"))
	}
	errs = append(errs, c.validateAdmin()...)
	if c.Bot.Timeout <= 0 || c.Retention <= 0 || c.ShutdownTimeout <= 0 || c.ReadTimeout <= 0 || c.ReadyCache <= 0 {
		errs = append(errs, errors.New("bot.timeout, retention, shutdown_timeout, read_timeout and ready_cache must be positive"))
	}
	return errs
}

// validateExposure refuses a listen address other than loopback while an enabled channel
// leaves routes open without credentials, unless allow_unauthenticated_public says so.
func (c *Config) validateExposure(p plan) []error {
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil || c.AllowUnauthenticatedPublic || isLoopback(host) {
		return nil
	}
	var errs []error
	for _, r := range p.channels {
		if risk := r.Unauthenticated(c.sections[r.Section]); risk != "" {
			errs = append(errs, fmt.Errorf("listen %q is not a loopback address, and %s; "+
				"listen on 127.0.0.1 behind a proxy, configure credentials, or accept the risk with "+
				"--allow-unauthenticated-public (allow_unauthenticated_public: true, BRIDGE_ALLOW_UNAUTHENTICATED_PUBLIC=true)",
				c.Listen, risk))
		}
	}
	return errs
}

// validateRequires refuses a configuration that turns off a channel an enabled one is built on
// (the sandbox desk on the Direct Line server).
func (c *Config) validateRequires(p plan) []error {
	on := map[string]bool{}
	for _, r := range p.channels {
		on[r.Name] = true
	}
	var errs []error
	for _, r := range p.channels {
		for _, need := range r.Requires {
			if on[need] {
				continue
			}
			section := need
			for _, o := range c.regs {
				if o.Name == need {
					section = o.Section
				}
			}
			errs = append(errs, fmt.Errorf("%s: the %s channel needs the %s channel, which is off in the %s: section; turn %s on again, or turn %s off",
				r.Section, r.Name, need, section, section, r.Section))
		}
	}
	return errs
}

// isLoopback reports whether host (of a listen address) is a loopback address or localhost.
// An empty host and the unspecified addresses listen on every interface.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
