package cli

import (
	"context"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
)

// TestCallerSurvivesKill: a user, its policy and its access key made just
// before a SIGKILL sign and are authorized after the restart; a key made
// inactive just before another SIGKILL stays refused.
func TestCallerSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	c := startChild(t, dir)
	defer func() { c.stop() }()
	rootIAM := func() *awsiam.Client {
		return awsiam.New(awsiam.Options{BaseEndpoint: aws.String(c.addr), Region: "us-east-1",
			Credentials: credentials.NewStaticCredentialsProvider(crashKey, crashSecret, ""), RetryMaxAttempts: 1})
	}
	if _, err := rootIAM().CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String("reader")}); err != nil {
		t.Fatal(err)
	}
	if _, err := rootIAM().PutUserPolicy(ctx, &awsiam.PutUserPolicyInput{UserName: aws.String("reader"), PolicyName: aws.String("p"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"events:ListRules","Resource":"*"}]}`)}); err != nil {
		t.Fatal(err)
	}
	k, err := rootIAM().CreateAccessKey(ctx, &awsiam.CreateAccessKeyInput{UserName: aws.String("reader")})
	if err != nil {
		t.Fatal(err)
	}
	kill := func() {
		t.Helper()
		if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = c.cmd.Wait()
		c = startChild(t, dir)
	}
	user := func() error {
		eb := eventbridge.New(eventbridge.Options{BaseEndpoint: aws.String(c.addr), Region: "us-east-1", RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider(aws.ToString(k.AccessKey.AccessKeyId), aws.ToString(k.AccessKey.SecretAccessKey), "")})
		_, err := eb.ListRules(ctx, &eventbridge.ListRulesInput{})
		return err
	}
	kill()
	if err := user(); err != nil {
		t.Fatalf("the user's key after a SIGKILL: %v", err)
	}
	if _, err := rootIAM().UpdateAccessKey(ctx, &awsiam.UpdateAccessKeyInput{UserName: aws.String("reader"), AccessKeyId: k.AccessKey.AccessKeyId,
		Status: "Inactive"}); err != nil {
		t.Fatal(err)
	}
	kill()
	if err := user(); err == nil {
		t.Fatal("a key made inactive before a SIGKILL signs after the restart")
	}
}
