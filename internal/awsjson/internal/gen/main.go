// Command gen writes awsjson's model table (models_gen.go) from the botocore models of the
// machine's python3. Run it with go generate in internal/awsjson.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/ecs-sidecar/reconciler/internal/awsjson/internal/botocore"
)

func main() {
	out := flag.String("o", "models_gen.go", "output file")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	dir, err := botocore.Dir()
	if err != nil {
		return err
	}
	version, err := botocore.Version()
	if err != nil {
		return err
	}
	src, err := botocore.GenerateGo(dir, version)
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, src, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}
