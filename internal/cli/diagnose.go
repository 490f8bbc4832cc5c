package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"bridgeport/internal/admin"
)

// diagnose asks the server to check everything that makes a rule fail to
// reach its targets, prints what is wrong and how to fix it, and exits 1
// when it finds a problem.
func diagnose(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("bridgeport diagnose", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs, getenv)
	rule := fs.String("rule", "", "the rule to check (required)")
	bus := fs.String("event-bus", "default", "the rule's event bus")
	target := fs.String("target", "", "check only this target id")
	probe := fs.Bool("probe", false, "send each API destination one request as a delivery would (its method, the connection's auth) with a test event from source bridgeport.diagnose as the body, and report the answer and its time")
	output := fs.String("output", "text", "text or json")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *rule == "" || fs.NArg() > 0 || (*output != "text" && *output != "json") {
		fmt.Fprintln(stderr, "usage: bridgeport diagnose --rule NAME [--event-bus NAME] [--target ID] [--probe] [--output json]")
		return 2
	}
	cl, err := cf.client(getenv)
	if err != nil {
		fmt.Fprintln(stderr, "bridgeport diagnose:", err)
		return 2
	}
	in := admin.DiagnoseInput{Rule: rule, EventBusName: bus, Probe: *probe}
	if *target != "" {
		in.TargetId = target
	}
	var out admin.DiagnoseOutput
	if err := cl.Call(ctx, admin.SigningName, "1.1", admin.TargetPrefix+".Diagnose", in, &out); err != nil {
		fmt.Fprintln(stderr, "bridgeport diagnose:", err)
		return 2
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
	} else {
		name := *rule
		if out.RuleArn != "" {
			name = out.RuleArn
		}
		fmt.Fprintf(stdout, "diagnosis of %s\n", name)
		for _, f := range out.Findings {
			where := f.Check
			if f.Target != "" {
				where = "target " + f.Target + ": " + f.Check
			}
			fmt.Fprintf(stdout, "  %-8s %s: %s\n", f.Status, where, f.Message)
			if f.Fix != "" {
				fmt.Fprintf(stdout, "           fix: %s\n", f.Fix)
			}
		}
		fmt.Fprintf(stdout, "%d problems, %d warnings\n", out.Problems, out.Warnings)
	}
	if out.Problems > 0 {
		return 1
	}
	return 0
}
