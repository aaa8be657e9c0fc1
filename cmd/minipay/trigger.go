package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/minipay/minipay/sandbox"
)

func triggerCommand(fs *flag.FlagSet, e *env) runFunc {
	api := apiFlags(fs, e.getenv)
	asJSON := fs.Bool("json", false, "print the API's answer as JSON")
	return func(ctx context.Context, args []string) error {
		if len(args) != 1 {
			return usageError("trigger: name one event type:\n%s", triggerTypes())
		}
		if err := api.check("trigger"); err != nil {
			return err
		}
		var out sandbox.Result
		_, err := api.do(ctx, "POST", "/v1/test_helpers/trigger", map[string]string{"event_type": args[0]}, &out)
		var ae *apiError
		switch {
		case errors.As(err, &ae) && ae.Code == "sandbox_only":
			return fmt.Errorf("trigger: %s is not a sandbox: triggers make objects and move money, so they run only where MINIPAY_SANDBOX=true (minipay dev sets it)", api.baseURL)
		case errors.As(err, &ae) && ae.Code == "event_type_not_triggerable":
			return usageError("trigger: %s\n%s", ae.Message, triggerTypes())
		case err != nil:
			return fmt.Errorf("trigger %s: %w", args[0], err)
		}
		if *asJSON {
			return json.NewEncoder(e.stdout).Encode(out)
		}
		fmt.Fprintf(e.stdout, "Triggered %s:\n", out.EventType)
		for _, o := range out.Objects {
			fmt.Fprintf(e.stdout, "  %-17s %s\n", o.Object, o.ID)
		}
		fmt.Fprintln(e.stdout, "The events follow through your webhook endpoints and minipay listen.")
		return nil
	}
}

// triggerTypes lists what trigger can make, for help and errors.
func triggerTypes() string {
	var b strings.Builder
	for _, t := range sandbox.Types() {
		fmt.Fprintf(&b, "  %-28s %s\n", t[0], t[1])
	}
	return strings.TrimRight(b.String(), "\n")
}
