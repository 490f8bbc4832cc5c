package cli

import (
	"errors"
	"flag"
	"net/http"
	"time"

	"bridgeport/internal/awsapi"
)

// clientFlags are the flags of the commands that talk to a server: where it
// is. Credentials and region come from the environment, as for every AWS
// tool: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION (or
// AWS_DEFAULT_REGION).
type clientFlags struct {
	endpoint string
}

func (c *clientFlags) register(fs *flag.FlagSet, getenv func(string) string) {
	def := getenv("BRIDGEPORT_ENDPOINT")
	if def == "" {
		def = "http://127.0.0.1:4010"
	}
	fs.StringVar(&c.endpoint, "endpoint", def, "the server's URL (env BRIDGEPORT_ENDPOINT)")
}

func (c *clientFlags) client(getenv func(string) string) (*awsapi.Client, error) {
	region := getenv("AWS_REGION")
	if region == "" {
		region = getenv("AWS_DEFAULT_REGION")
	}
	if region == "" {
		region = "us-east-1"
	}
	cl := &awsapi.Client{Endpoint: c.endpoint, Region: region, AccessKeyID: getenv("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: getenv("AWS_SECRET_ACCESS_KEY"), HTTP: &http.Client{Timeout: 60 * time.Second}}
	if cl.AccessKeyID == "" || cl.SecretAccessKey == "" {
		return nil, errors.New("no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (bridgeport serve prints them on first start)")
	}
	return cl, nil
}
