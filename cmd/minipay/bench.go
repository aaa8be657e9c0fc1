package main

import (
	"flag"

	"github.com/minipay/minipay/bench"
)

func benchCommand(fs *flag.FlagSet, e *env) runFunc {
	return runFunc(bench.Command(fs, e.getenv, e.stdout, e.stderr))
}
