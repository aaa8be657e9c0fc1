package main

import (
	"context"
	"io"

	"github.com/minipay/minipay/bench"
)

func runBench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return bench.Run(ctx, args, getenv, stdout, stderr)
}
