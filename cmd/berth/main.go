// Command berth is the container engine's command line (Docker's, rebuilt).
package main

import (
	"os"

	"github.com/berth-dev/berth/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
