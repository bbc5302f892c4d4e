package config_test

import (
	"fmt"
	"time"

	"github.com/layercache/layercache/config"
)

// memoryOptions stands for a driver's options struct.
type memoryOptions struct {
	TTL     time.Duration `yaml:"ttl"`
	MaxSize int64         `yaml:"max_size"` // entries, or a size such as "64MiB"
}

func Example() {
	doc := []byte(`
namespace: myapp
layers:
  - driver: memory
    ttl: 1m
    max_size: 64MiB
degradation: { retry_after: 5s }
`)
	cfg, err := config.Parse(doc, "example.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, b := range cfg.Layers {
		// What a driver's OpenLayer does with its block:
		var opt memoryOptions
		if err := b.Decode(&opt); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(b.Path(), b.Driver, opt.TTL, opt.MaxSize)
	}
	fmt.Println(cfg.Namespace, cfg.Degradation.RetryAfter, cfg.Degradation.Timeout)
	// Output:
	// layers[0] memory 1m0s 67108864
	// myapp 5s 100ms
}

func ExampleBlock_Decode_unknownKey() {
	cfg, err := config.Parse([]byte(`
layers:
  - driver: memory
    tll: 1m
`), "prod.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	var opt memoryOptions
	fmt.Println(cfg.Layers[0].Decode(&opt))
	// Output:
	// layercache/config: prod.yaml:4: layers[0].tll: unknown key (did you mean "ttl"?)
}
