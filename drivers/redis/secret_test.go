package redis

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"go.yaml.in/yaml/v3"
)

// A configuration read from a file can be printed, logged and marshalled
// without giving away the password it holds, in its own field or in its
// URL, while the layer still gets the password itself.
func TestConfigPrintsPasswordsRedacted(t *testing.T) {
	var c Config
	err := yamlBlock{"layers[1]", `
url: redis://app:url-pass-9f2c@cache.internal:6379/2
password: field-pass-7d1e
prefix: "app:"
`}.Decode(&c)
	if err != nil {
		t.Fatal(err)
	}
	if string(c.Password) != "field-pass-7d1e" || !strings.Contains(string(c.URL), "url-pass-9f2c") {
		t.Fatalf("decoded %q, %q: the values themselves must stay intact", string(c.Password), string(c.URL))
	}
	client, err := c.client() // connects lazily: no server needed
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	o := client.(*goredis.Client).Options()
	if o.Password != "field-pass-7d1e" || o.Username != "app" {
		t.Errorf("client options: user %q, password %q", o.Username, o.Password)
	}

	var printed []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		printed = append(printed, fmt.Sprintf(verb, c), fmt.Sprintf(verb, &c), fmt.Sprintf(verb, c.Connection))
	}
	printed = append(printed, fmt.Sprint(c.Password), fmt.Sprint(c.URL))
	for _, newHandler := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var b bytes.Buffer
		slog.New(newHandler(&b)).Info("config", "cfg", c, "password", c.Password, "url", c.URL)
		printed = append(printed, b.String())
	}
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	ys, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	printed = append(printed, string(js), string(ys))

	for _, out := range printed {
		if strings.Contains(out, "field-pass-7d1e") || strings.Contains(out, "url-pass-9f2c") {
			t.Errorf("a password shows in %s", out)
		}
	}
	if got := fmt.Sprint(c.URL); got != "redis://app:xxxxx@cache.internal:6379/2" {
		t.Errorf("URL prints as %q, want the URL with its password masked", got)
	}
	if got := fmt.Sprintf("%q", c.Password); got != `"[redacted]"` {
		t.Errorf("Password prints as %s", got)
	}
}

func TestSecretAndURLPrintWhatIsSafe(t *testing.T) {
	for _, tc := range []struct {
		v    fmt.Stringer
		want string
	}{
		{Secret(""), ""}, // no password set: say so
		{URL(""), ""},
		{URL("redis://cache.internal:6379/0"), "redis://cache.internal:6379/0"},
		{URL("rediss://:only-pass@cache.internal:6380"), "rediss://:xxxxx@cache.internal:6380"},
		{URL("unix://app:sock-pass@/run/redis.sock?db=1"), "unix://app:xxxxx@/run/redis.sock?db=1"},
		// Not a well-formed URL: nothing says which part is the password.
		{URL("redis://user:p%zz@host"), "[redacted]"},
		{URL("redis//app:hunter2@cache:6379"), "[redacted]"},
		{URL("redis:/app:hunter2@cache:6379"), "[redacted]"},
		{URL("redis:app:hunter2@cache:6379"), "[redacted]"},
		{URL("app:hunter2@cache:6379"), "[redacted]"},
		{URL("cache:6379"), "[redacted]"},
	} {
		if got := fmt.Sprint(tc.v); got != tc.want {
			t.Errorf("%T(...) prints %q, want %q", tc.v, got, tc.want)
		}
	}
}
