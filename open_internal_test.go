package layercache

import (
	"strings"
	"testing"

	"github.com/layercache/layercache/config"
)

func TestUnknownDriverError_NamesTheImportOfAShippedDriver(t *testing.T) {
	err := unknownDriverError(&config.Block{Driver: "disk"}, "layer")
	if !strings.Contains(err.Error(), `import _ "github.com/layercache/layercache/drivers/disk"`) {
		t.Fatalf("no import hint: %v", err)
	}
	err = unknownDriverError(&config.Block{Driver: "couchbase"}, "layer")
	if strings.Contains(err.Error(), "drivers/couchbase") {
		t.Fatalf("hint names a package that does not exist: %v", err)
	}
}
