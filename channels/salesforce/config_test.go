package salesforce

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/bfbridge/bfbridge/activity"
	"github.com/bfbridge/bfbridge/activity/handoff"
	"github.com/bfbridge/bfbridge/bridge"
)

func writeKey(t *testing.T, bits int, pkcs1 bool) (string, *rsa.PrivateKey) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	require.NoError(t, err)
	block := &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
	if !pkcs1 {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		require.NoError(t, err)
		block = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	file := filepath.Join(t.TempDir(), "key.pem")
	require.NoError(t, os.WriteFile(file, pem.EncodeToMemory(block), 0o600))
	return file, k
}

func validConfig() Config {
	return Config{Enabled: true, SCRTURL: "https://shop.my.salesforce-scrt.com", OrgID: "00DXX0000001gPL", ESDeveloperName: "Web"}
}

func TestValidate(t *testing.T) {
	small, _ := writeKey(t, 1024, true)
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"off is valid", func(c *Config) { *c = Config{SCRTURL: "::"} }, ""},
		{"complete", func(*Config) {}, ""},
		{"no scrt_url", func(c *Config) { c.SCRTURL = "" }, "salesforce.scrt_url is required"},
		{"scrt_url not a URL", func(c *Config) { c.SCRTURL = "shop.my.salesforce-scrt.com" }, "salesforce.scrt_url must be an https origin"},
		{"org_id length", func(c *Config) { c.OrgID = "00D" }, "salesforce.org_id"},
		{"no es_developer_name", func(c *Config) { c.ESDeveloperName = "" }, "salesforce.es_developer_name is required"},
		{"key without issuer and kid", func(c *Config) { c.IdentityPrivateKeyFile = small }, "salesforce.identity_issuer is required"},
		{"small key", func(c *Config) {
			c.IdentityPrivateKeyFile, c.IdentityIssuer, c.IdentityKeyID = small, "iss", "kid"
		}, "salesforce.identity_private_key_file: the RSA key has 1024 bits; at least 2048 are required"},
		{"missing key file", func(c *Config) {
			c.IdentityPrivateKeyFile, c.IdentityIssuer, c.IdentityKeyID = "/nonexistent/key.pem", "iss", "kid"
		}, "salesforce.identity_private_key_file: cannot read the key file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mod(&c)
			err := c.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestParseKey(t *testing.T) {
	for _, pkcs1 := range []bool{true, false} {
		file, k := writeKey(t, 2048, pkcs1)
		got, err := loadKey(file)
		require.NoError(t, err)
		require.True(t, k.Equal(got))
	}
	_, err := parseKey([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	require.Error(t, err)
}

// TestIdentityToken: RS256 with kid in the header, iss, sub and a short exp.
func TestIdentityToken(t *testing.T) {
	file, k := writeKey(t, 2048, false)
	cfg := validConfig()
	cfg.IdentityPrivateKeyFile, cfg.IdentityIssuer, cfg.IdentityKeyID = file, "https://shop.example.com", "key-7"
	ch, err := New(cfg, nil, "", zerolog.Nop())
	require.NoError(t, err)
	raw, err := ch.identityToken("dl_ada")
	require.NoError(t, err)
	var claims jwt.RegisteredClaims
	tok, err := jwt.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return &k.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer("https://shop.example.com"), jwt.WithExpirationRequired())
	require.NoError(t, err)
	require.Equal(t, "key-7", tok.Header["kid"])
	require.Equal(t, "dl_ada", claims.Subject)
	require.WithinDuration(t, time.Now().Add(5*time.Minute), claims.ExpiresAt.Time, 5*time.Second)
}

func TestSubject(t *testing.T) {
	c := &bridge.Conversation{Customer: bridge.Leg{User: activity.ChannelAccount{ID: "dl_x"}}}
	for _, tc := range []struct {
		id   *bridge.Identity
		want string
		ok   bool
	}{
		{nil, "", false},
		{&bridge.Identity{Name: "Ada"}, "", false},
		{&bridge.Identity{Name: "Ada", Email: "Ada@Example.com", Phone: "+1 555"}, "ada@example.com", true},
		{&bridge.Identity{Phone: "+44 (20) 7946-0000"}, "tel:+442079460000", true},
	} {
		c.Customer.Identity = tc.id
		sub, ok := subject(c)
		require.Equal(t, tc.ok, ok, "%+v", tc.id)
		require.Equal(t, tc.want, sub, "never the Direct Line user id")
	}
}

func TestRoutingAttributes(t *testing.T) {
	ch := &Channel{cfg: Config{RoutingAttributes: map[string]any{"Channel": "web", "Topic": "static"}}}
	ch.cfg.defaults()
	vars := func(raw string) handoff.Variables {
		v, err := handoff.ParseVariables([]byte(raw))
		require.NoError(t, err)
		return v
	}
	c := &bridge.Conversation{ID: "conv-1", Context: vars(`{"Language":"en"}`)}
	e := &handoff.Escalation{Context: vars(`{"Topic":"billing","Priority":2,"Score":0.5,"VIP":true,"Topics":["a","b",3],"Obj":{"x":1}}`),
		AgentNote: strings.Repeat("n", 300)}
	got := ch.routingAttributes(c, e, true)
	require.Equal(t, map[string]any{
		"Channel": "web", "Topic": "billing", "Language": "en", "Priority": int64(2), "Score": 0.5, "VIP": true,
		"Topics": "a, b, 3", "Session_Id": "conv-1", "Chat_Consumer_Type": "Authenticated", "Summary": strings.Repeat("n", 255),
	}, got)
	require.Equal(t, "Anonymous", ch.routingAttributes(c, e, false)["Chat_Consumer_Type"])
}

func TestTranscriptMessages(t *testing.T) {
	c := &bridge.Conversation{ID: "conv-1", Customer: bridge.Leg{User: activity.ChannelAccount{ID: "u"}}}
	msg := func(from, text string) *activity.Activity {
		return &activity.Activity{Type: activity.TypeMessage, From: &activity.ChannelAccount{ID: from}, Text: text}
	}
	e := &handoff.Escalation{AgentNote: "wants a refund", Transcript: handoff.Transcript{Activities: []*activity.Activity{
		msg("u", "one"), msg("bot", "two"), {Type: activity.TypeTyping}, msg("u", "three\nlines"),
	}}}
	got := transcriptMessages(c, e, 1000)
	require.Equal(t, []string{"Conversation with the bot before the handoff (bridge session conv-1)\nSummary: wants a refund\n" +
		"Customer: one\nBot: two\nCustomer: three lines"}, got)

	got = transcriptMessages(c, e, 31) // room for the last two lines (and their line ends) only
	require.Equal(t, []string{"Conversation with the bot before the handoff (bridge session conv-1)\nSummary: wants a refund\n" +
		"(1 earlier lines left out)\nBot: two\nCustomer: three lines"}, got)

	long := make([]*activity.Activity, 0, 10)
	for range 10 {
		long = append(long, msg("u", strings.Repeat("x", 1500)))
	}
	got = transcriptMessages(c, &handoff.Escalation{Transcript: handoff.Transcript{Activities: long}}, 100000)
	require.Len(t, got, 5, "packed into messages of at most 4000 characters")
	for _, m := range got {
		require.LessOrEqual(t, len([]rune(m)), maxMessageChars)
	}
}
