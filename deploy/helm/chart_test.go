// Package helm holds the tests of the bfbridge Helm chart (deploy/helm/bfbridge): it lints and
// renders with the real helm binary, and checks the rendered objects.
package helm

import (
	"bytes"
	"errors"
	"go/build"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/bfbridge/bfbridge/internal/testutil"
)

// helmBin finds helm on PATH or where scripts/test.sh installs it ($GOPATH/bin); without it the
// test skips, or fails under CI.
func helmBin(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		gopath = build.Default.GOPATH
	}
	p := filepath.Join(strings.Split(gopath, string(os.PathListSeparator))[0], "bin", "helm")
	if _, err := os.Stat(p); err != nil {
		testutil.Require(t, "helm (go install helm.sh/helm/v4/cmd/helm@v4.3.2)")
	}
	return p
}

const chart = "bfbridge"

func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helmBin(t), args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// object is one rendered Kubernetes object.
type object map[string]any

func (o object) kind() string { return o["kind"].(string) }

// render runs helm template with args and decodes every document.
func render(t *testing.T, args ...string) []object {
	t.Helper()
	out, err := helm(t, append([]string{"template", "r", chart}, args...)...)
	require.NoError(t, err, out)
	var objs []object
	dec := yaml.NewDecoder(strings.NewReader(out))
	for {
		var o map[string]any
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, out)
		if o != nil {
			objs = append(objs, object(o))
		}
	}
	return objs
}

func ofKind(objs []object, kind string) []object {
	var r []object
	for _, o := range objs {
		if o.kind() == kind {
			r = append(r, o)
		}
	}
	return r
}

// get walks a path of map keys and list indexes.
func get(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			if o, isObj := v.(object); isObj {
				v = map[string]any(o)
			}
			m, ok := v.(map[string]any)
			require.True(t, ok, "%v is not a map at %q", v, k)
			v = m[k]
		case int:
			l, ok := v.([]any)
			require.True(t, ok, "%v is not a list at %d", v, k)
			require.Less(t, k, len(l))
			v = l[k]
		}
	}
	return v
}

// container is the Deployment's bridge container.
func container(t *testing.T, objs []object) map[string]any {
	t.Helper()
	d := ofKind(objs, "Deployment")
	require.Len(t, d, 1)
	return get(t, d[0], "spec", "template", "spec", "containers", 0).(map[string]any)
}

// env returns the container's environment by name.
func env(t *testing.T, c map[string]any) map[string]map[string]any {
	t.Helper()
	r := map[string]map[string]any{}
	for _, e := range c["env"].([]any) {
		m := e.(map[string]any)
		r[m["name"].(string)] = m
	}
	return r
}

func TestChartLints(t *testing.T) {
	for _, args := range [][]string{nil, {"-f", "bfbridge/ci/redis-values.yaml"}} {
		out, err := helm(t, append([]string{"lint", "--strict", chart}, args...)...)
		require.NoError(t, err, out)
		require.Contains(t, out, "1 chart(s) linted, 0 chart(s) failed")
	}
}

// TestChartDefaults: one replica on SQLite with its volume, probes on the public port, the
// admin port nowhere outside the pod, non-root with a read-only root filesystem.
func TestChartDefaults(t *testing.T) {
	objs := render(t)
	kinds := []string{}
	for _, o := range objs {
		kinds = append(kinds, o.kind())
	}
	slices.Sort(kinds)
	require.Equal(t, []string{"Deployment", "PersistentVolumeClaim", "PodDisruptionBudget", "Service"}, kinds)

	d := ofKind(objs, "Deployment")[0]
	require.EqualValues(t, 1, get(t, d, "spec", "replicas"))
	require.Equal(t, "Recreate", get(t, d, "spec", "strategy", "type"), "SQLite: never two pods on the store")
	c := container(t, objs)
	checkProbes(t, c)
	e := env(t, c)
	require.Equal(t, "sqlite", e["BRIDGE_STORE"]["value"])
	require.Equal(t, "/data", e["BRIDGE_DATA_DIR"]["value"])
	require.Equal(t, "127.0.0.1:9090", e["BRIDGE_ADMIN_LISTEN"]["value"], "the admin listener stays on loopback")
	require.Len(t, c["ports"], 1, "only the public port")
	require.Equal(t, "http", get(t, c, "ports", 0, "name"))

	svc := ofKind(objs, "Service")
	require.Len(t, svc, 1, "no admin Service by default")
	ports := get(t, svc[0], "spec", "ports").([]any)
	require.Len(t, ports, 1)
	require.Equal(t, "http", get(t, ports[0], "targetPort"))
	require.NotEqual(t, 9090, get(t, ports[0], "port"))

	pvc := ofKind(objs, "PersistentVolumeClaim")[0]
	vols := get(t, d, "spec", "template", "spec", "volumes").([]any)
	require.Equal(t, get(t, pvc, "metadata", "name"), get(t, vols[0], "persistentVolumeClaim", "claimName"), "the data volume is the PVC")
	require.Equal(t, "/data", get(t, c, "volumeMounts", 0, "mountPath"))

	checkSecurity(t, d, c)
	pdb := ofKind(objs, "PodDisruptionBudget")[0]
	require.Equal(t, get(t, d, "spec", "selector", "matchLabels"), get(t, pdb, "spec", "selector", "matchLabels"))
	require.EqualValues(t, 1, get(t, pdb, "spec", "maxUnavailable"), "a drain can move the single replica")
}

// TestChartRedisReplicas: three replicas on Redis: no PVC, every secret from a Secret, the admin
// Service when asked for.
func TestChartRedisReplicas(t *testing.T) {
	objs := render(t, "-f", "bfbridge/ci/redis-values.yaml")
	require.Empty(t, ofKind(objs, "PersistentVolumeClaim"), "no volume claim on Redis")
	require.Len(t, ofKind(objs, "PodDisruptionBudget"), 1)
	d := ofKind(objs, "Deployment")[0]
	require.EqualValues(t, 3, get(t, d, "spec", "replicas"))
	require.Nil(t, get(t, d, "spec", "strategy"), "rolling updates")
	c := container(t, objs)
	checkProbes(t, c)
	checkSecurity(t, d, c)
	e := env(t, c)
	require.Equal(t, "redis", e["BRIDGE_STORE"]["value"])
	require.Equal(t, map[string]any{"name": "bfbridge-redis", "key": "url"}, get(t, e["BRIDGE_REDIS_URL"], "valueFrom", "secretKeyRef"))
	for _, name := range secretEnv(t) {
		require.Contains(t, e, name, "the chart passes %s", name)
		require.NotContains(t, e[name], "value", "%s never as a plain value", name)
		require.NotNil(t, get(t, e[name], "valueFrom", "secretKeyRef", "key"), "%s from a Secret", name)
	}
	require.Equal(t, map[string]any{"name": "bfbridge-secrets", "key": "idp-client-secret"},
		get(t, e["BRIDGE_OAUTH_IDP_SECRET"], "valueFrom", "secretKeyRef"), "secrets.env: an oauth connection's client_secret_env")

	var admin object
	for _, s := range ofKind(objs, "Service") {
		if strings.HasSuffix(get(t, s, "metadata", "name").(string), "-admin") {
			admin = s
		}
	}
	require.NotNil(t, admin, "the admin Service, asked for")
	require.EqualValues(t, 9090, get(t, admin, "spec", "ports", 0, "port"))
	require.Equal(t, "0.0.0.0:9090", e["BRIDGE_ADMIN_LISTEN"]["value"])
	require.Equal(t, "/etc/bfbridge/bridge.yaml", e["BRIDGE_CONFIG"]["value"])
	require.Len(t, ofKind(objs, "ConfigMap"), 1)
}

// TestChartRefuses: values the bridge cannot run with, and values the schema
// (values.schema.json) does not allow, fail to render, saying why.
func TestChartRefuses(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--set", "replicaCount=3"}, "replicaCount > 1 needs the Redis store"},
		{[]string{"--set", "admin.service.enabled=true"}, "admin.service.enabled needs the admin token"},
		// values.schema.json: a misspelt key, a value of the wrong kind
		{[]string{"--set", "replicaCont=3"}, "additional properties 'replicaCont' not allowed"},
		{[]string{"--set", "redis.url=127.0.0.1:6379"}, "/redis/url"},
		{[]string{"--set", "service.port=http"}, "/service/port"},
	} {
		out, err := helm(t, append([]string{"template", "r", chart}, tc.args...)...)
		require.Error(t, err, out)
		require.Contains(t, out, tc.want)
	}
	out, err := helm(t, "template", "r", chart, "--set", "replicaCount=3", "--set", "redis.url=redis://redis:6379/0")
	require.NoError(t, err, out)
}

func checkProbes(t *testing.T, c map[string]any) {
	t.Helper()
	require.Equal(t, "/livez", get(t, c, "livenessProbe", "httpGet", "path"))
	require.Equal(t, "http", get(t, c, "livenessProbe", "httpGet", "port"))
	require.Equal(t, "/readyz", get(t, c, "readinessProbe", "httpGet", "path"))
	require.Equal(t, "http", get(t, c, "readinessProbe", "httpGet", "port"))
}

func checkSecurity(t *testing.T, d object, c map[string]any) {
	t.Helper()
	pod := get(t, d, "spec", "template", "spec", "securityContext")
	require.Equal(t, true, get(t, pod, "runAsNonRoot"))
	require.EqualValues(t, 65532, get(t, pod, "runAsUser"))
	require.Equal(t, true, get(t, c, "securityContext", "readOnlyRootFilesystem"))
	require.Equal(t, false, get(t, c, "securityContext", "allowPrivilegeEscalation"))
	require.Equal(t, []any{"ALL"}, get(t, c, "securityContext", "capabilities", "drop"))
}

// secretEnv lists the environment variables of secrets that the bridge's configuration reads:
// the env tags in app/ and channels/ whose names say PASSWORD, SECRET or TOKEN, so that a
// secret added there and not to the chart fails this test.
func secretEnv(t *testing.T) []string {
	t.Helper()
	re := regexp.MustCompile(`env:"(BRIDGE_[A-Z_]*(?:PASSWORD|SECRET|TOKEN)[A-Z_]*)"`)
	root := testutil.RepoRoot(t)
	var names []string
	for _, dir := range []string{"app", "channels"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			b, err := os.ReadFile(p)
			for _, m := range re.FindAllSubmatch(b, -1) {
				names = append(names, string(m[1]))
			}
			return err
		})
		require.NoError(t, err)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	require.NotEmpty(t, names)
	return names
}
