// Command standin takes the reconciler's place in the image tests for the
// platforms the test machine cannot run: it is compiled for them in seconds
// where the reconciler's whole dependency graph takes minutes on a cold
// cache. `make image` always compiles the reconciler itself.
package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() {
	fmt.Println("standin", runtime.GOOS+"/"+runtime.GOARCH)
	os.Exit(0)
}
