package cli

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
)

// invokeRole creates a role that EventBridge may assume and that may
// invoke every API destination, on the server at base, and returns its ARN.
func invokeRole(t *testing.T, base, key, secret string) *string {
	t.Helper()
	ctx := context.Background()
	c := awsiam.New(awsiam.Options{BaseEndpoint: aws.String(base), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(key, secret, "")})
	if _, err := c.CreateRole(ctx, &awsiam.CreateRoleInput{RoleName: aws.String("invoke"), AssumeRolePolicyDocument: aws.String(
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutRolePolicy(ctx, &awsiam.PutRolePolicyInput{RoleName: aws.String("invoke"), PolicyName: aws.String("invoke"), PolicyDocument: aws.String(
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"events:InvokeApiDestination","Resource":"*"}]}`)}); err != nil {
		t.Fatal(err)
	}
	return aws.String("arn:aws:iam::000000000000:role/invoke")
}
