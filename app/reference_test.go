package app

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestReferenceLoads: the reference of the defaults loads with LoadFile (which refuses unknown
// keys) into a configuration that validates and equals the defaults, and prints the same again.
func TestReferenceLoads(t *testing.T) {
	def := Defaults()
	out, err := def.Reference()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bridge.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	got := Defaults()
	if err := got.LoadFile(path); err != nil {
		t.Fatalf("the reference does not load: %v", err)
	}
	again, err := got.Reference()
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(out) {
		t.Errorf("the loaded reference prints differently:\n%s\n---\n%s", out, again)
	}
	for _, p := range def.paths() {
		if !reflect.DeepEqual(got.sections[p], def.sections[p]) {
			t.Errorf("section %s: loaded %+v, defaults %+v", p, got.sections[p], def.sections[p])
		}
	}
	got.Finish()
	if err := got.Validate(); err != nil {
		t.Errorf("the reference does not validate: %v", err)
	}
}

// TestReferenceEveryKey: every key of the file's shape, walked here from the struct types, is in
// the reference with a comment, and every variable the configuration reads is named in it.
func TestReferenceEveryKey(t *testing.T) {
	c := Defaults()
	out, err := c.Reference()
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	printed := map[string]string{} // dotted key → comment
	var walk func(prefix string, n *yaml.Node)
	walk = func(prefix string, n *yaml.Node) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			printed[prefix+k.Value] = k.HeadComment
			if v.Kind == yaml.MappingNode && len(v.Content) > 0 {
				walk(prefix+k.Value+".", v)
			}
		}
	}
	walk("", doc.Content[0])

	var want []string
	var keys func(prefix string, t reflect.Type)
	keys = func(prefix string, t reflect.Type) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		for i := range t.NumField() {
			sf := t.Field(i)
			tag := sf.Tag.Get("yaml")
			if !sf.IsExported() || tag == "-" {
				continue
			}
			if strings.HasSuffix(tag, ",inline") {
				keys(prefix, sf.Type)
				continue
			}
			want = append(want, prefix+tag)
			if sf.Type.Kind() == reflect.Struct && sf.Type != durationType {
				keys(prefix+tag+".", sf.Type)
			}
		}
	}
	keys("", reflect.TypeOf(c))
	keys("bot.", reflect.TypeOf(c.Bot))
	for _, p := range c.paths() {
		keys(p+".", reflect.TypeOf(c.sections[p]))
	}
	if len(want) < 100 {
		t.Fatalf("only %d keys found in the structs", len(want))
	}
	for _, k := range want {
		comment, ok := printed[k]
		switch {
		case !ok:
			t.Errorf("key %s is not in the reference", k)
		case !strings.HasPrefix(comment, "# ") || strings.Contains(comment, "(undocumented)"):
			t.Errorf("key %s has no comment: %q", k, comment)
		}
	}
	for _, name := range c.EnvNames() {
		if !strings.Contains(string(out), name) {
			t.Errorf("%s is not named in the reference", name)
		}
	}
	for _, k := range []string{"listen", "directline.token_ttl", "bot.directline.mode", "salesforce.backoff_max", "redis.sentinel.addrs"} {
		if !slices.Contains(want, k) {
			t.Errorf("the walk missed %s", k)
		}
	}
}

// TestReferenceSecrets: secrets set in the configuration are not printed, their variables are;
// a password in a URL is masked.
func TestReferenceSecrets(t *testing.T) {
	c := Defaults()
	secrets := map[string]string{}
	for _, name := range c.EnvNames() {
		if strings.Contains(name, "SECRET") || strings.Contains(name, "PASSWORD") || strings.HasSuffix(name, "_TOKEN") {
			secrets[name] = "leak-" + strings.ToLower(name) + "-0123456789"
			if err := c.Set(name, secrets[name]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(secrets) < 6 {
		t.Fatalf("only %d secrets: %v", len(secrets), secrets)
	}
	for name, v := range map[string]string{"BRIDGE_LISTEN": "127.0.0.1:9999", "BRIDGE_REDIS_URL": "redis://user:hunter2-0123@127.0.0.1:6379/0"} {
		if err := c.Set(name, v); err != nil {
			t.Fatal(err)
		}
	}
	out, err := c.Reference()
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range secrets {
		if strings.Contains(string(out), v) {
			t.Errorf("the value of %s is printed", name)
		}
		if !strings.Contains(string(out), "set it with "+name) && !strings.Contains(string(out), "environment only) "+name) {
			t.Errorf("%s is not named as the way to set a secret", name)
		}
	}
	if strings.Contains(string(out), "hunter2") || !strings.Contains(string(out), "url: redis://user:xxxxx@127.0.0.1:6379/0") {
		t.Error("the password of redis.url is not masked")
	}
	if !strings.Contains(string(out), "listen: 127.0.0.1:9999") {
		t.Error("the reference does not print the configuration's values")
	}
}

func TestIsSecret(t *testing.T) {
	for _, key := range []string{"secret", "app_password", "password", "admin_token", "client_secret"} {
		if !isSecret(key, "") {
			t.Errorf("%s is not a secret", key)
		}
	}
	for _, key := range []string{"token_endpoint", "token_url", "token_ttl", "token_issuers", "secret_file", "identity_private_key_file"} {
		if isSecret(key, "") {
			t.Errorf("%s is a secret", key)
		}
	}
	if !isSecret("key", "BRIDGE_X_TOKEN") {
		t.Error("a variable ending in _TOKEN is not a secret")
	}
}

func TestOneLine(t *testing.T) {
	for doc, want := range map[string]string{
		"A is x. Default: 5s.\n":                        "A is x. Default: 5s.",
		"A is x, e.g. \"y\". More.\nDefault: 1 MiB.":    "A is x, e.g. \"y\". Default: 1 MiB.",
		"A ends (b; c). 0: never.":                      "A ends (b; c). 0: never.",
		"A is x. Default: 3. It is\ncapped. Empty: no.": "A is x. Default: 3. Empty: no.",
		"": "",
	} {
		if got := oneLine(doc); got != want {
			t.Errorf("oneLine(%q) = %q, want %q", doc, got, want)
		}
	}
}
