package logging_test

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/kubekit/kubekit/logging"
)

func ExampleNew() {
	log, err := logging.New(
		logging.WithVerbosity(2),
		logging.WithOutput(os.Stdout),
		// Deterministic output for the example; the defaults add a time
		// stamp, the caller and error stack traces.
		logging.WithTimeLayout(""), logging.WithCaller(false), logging.WithStacktraces(false),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer log.Close()

	log.Info("starting", "version", "v1.2.3")
	log.V(2).Info("details", "workers", 4)
	log.V(3).Info("hidden at verbosity 2")
	log.Error(errors.New("connection refused"), "watch failed", "resource", "pods")
	// Output:
	// {"level":"INFO","msg":"starting","v":0,"version":"v1.2.3"}
	// {"level":"INFO","msg":"details","v":2,"workers":4}
	// {"level":"ERROR","msg":"watch failed","resource":"pods","err":"connection refused"}
}

func ExampleNew_console() {
	log, err := logging.New(logging.WithFormat(logging.FormatConsole), logging.WithOutput(os.Stdout),
		logging.WithTimeLayout(""), logging.WithCaller(false))
	if err != nil {
		fmt.Println(err)
		return
	}
	log.WithName("controller").Info("synced", "objects", 12)
	// Output:
	// INFO	controller	synced	{"v": 0, "objects": 12}
}

func ExampleNew_badInput() {
	_, err := logging.New(logging.WithFormat("text"), logging.WithVerbosity(-1))
	fmt.Println(err)
	// Output:
	// logging: WithVerbosity(-1) / -v: out of range; use 0 (the default: only V(0) lines) up to 127 (V(n) lines show when n <= verbosity: client-go logs requests at 6, bodies at 8 and up)
	// logging: WithFormat("text") / --log-format: unknown log format; use "json" or "console"
}

func ExampleLogger_RouteKlog() {
	log, err := logging.New(logging.WithVerbosity(4), logging.WithOutput(os.Stdout),
		logging.WithTimeLayout(""), logging.WithCaller(false), logging.WithStacktraces(false))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer log.Close()
	restore, err := log.RouteKlog()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer restore()

	// What client-go and other klog users write now goes through zap.
	klog.V(4).InfoS("Caches populated", "type", "*v1.Pod")
	klog.V(5).InfoS("hidden at verbosity 4")
	klog.ErrorS(errors.New("the server is currently unable to handle the request"), "Failed to watch", "type", "*v1.Pod")
	// Output:
	// {"level":"INFO","msg":"Caches populated","v":4,"type":"*v1.Pod"}
	// {"level":"ERROR","msg":"Failed to watch","type":"*v1.Pod","err":"the server is currently unable to handle the request"}
}

func ExampleFlags_BindPFlags() {
	fs := pflag.NewFlagSet("prog", pflag.ContinueOnError)
	var lf logging.Flags
	lf.BindPFlags(fs)
	if err := fs.Parse([]string{"-v", "3", "--log-format=console"}); err != nil {
		fmt.Println(err)
		return
	}
	log, err := logging.New(logging.WithFlags(&lf), logging.WithOutput(os.Stdout),
		logging.WithTimeLayout(""), logging.WithCaller(false))
	if err != nil {
		fmt.Println(err)
		return
	}
	log.V(3).Info("verbose", "verbosity", log.Verbosity())
	fs.VisitAll(func(f *pflag.Flag) { fmt.Printf("--%s (-%s) = %q\n", f.Name, f.Shorthand, f.Value) })

	err = fs.Parse([]string{"-v=-1"})
	fmt.Println(err)
	// Output:
	// INFO	verbose	{"v": 3, "verbosity": 3}
	// --log-file (-) = ""
	// --log-format (-) = "console"
	// --v (-v) = "3"
	// invalid argument "-1" for "-v, --v" flag: logging: WithVerbosity(-1) / -v: out of range; use 0 (the default: only V(0) lines) up to 127 (V(n) lines show when n <= verbosity: client-go logs requests at 6, bodies at 8 and up)
}
