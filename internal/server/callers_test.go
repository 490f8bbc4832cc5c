package server

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
)

// caller is an IAM user's clients.
type caller struct {
	arn string
	eb  *eventbridge.Client
	sqs *awssqs.Client
	iam *awsiam.Client
	key string
}

// newCaller creates user name with the inline policy doc (none if empty)
// and an access key, and returns clients that sign with it.
func (e *env) newCaller(name, doc string) caller {
	e.t.Helper()
	c := e.iamClient()
	u, err := c.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String(name)})
	if err != nil {
		e.t.Fatal(err)
	}
	if doc != "" {
		if _, err := c.PutUserPolicy(ctx, &awsiam.PutUserPolicyInput{UserName: aws.String(name), PolicyName: aws.String("p"), PolicyDocument: aws.String(doc)}); err != nil {
			e.t.Fatal(err)
		}
	}
	k, err := c.CreateAccessKey(ctx, &awsiam.CreateAccessKeyInput{UserName: aws.String(name)})
	if err != nil {
		e.t.Fatal(err)
	}
	creds := credentials.NewStaticCredentialsProvider(aws.ToString(k.AccessKey.AccessKeyId), aws.ToString(k.AccessKey.SecretAccessKey), "")
	base := aws.String("http://" + e.srv.Addr())
	return caller{arn: aws.ToString(u.User.Arn), key: aws.ToString(k.AccessKey.AccessKeyId),
		eb:  eventbridge.New(eventbridge.Options{BaseEndpoint: base, Region: "us-east-1", Credentials: creds, RetryMaxAttempts: 1}),
		sqs: awssqs.New(awssqs.Options{BaseEndpoint: base, Region: "us-east-1", Credentials: creds, RetryMaxAttempts: 1}),
		iam: awsiam.New(awsiam.Options{BaseEndpoint: base, Region: "us-east-1", Credentials: creds, RetryMaxAttempts: 1})}
}

func denied(t *testing.T, err error, code, principal, action, resource, why string) {
	t.Helper()
	apiError(t, err, code, "User: "+principal+" is not authorized to perform: "+action+" on resource: "+resource+" "+why)
}

const noAllow = "because no identity-based policy allows the "

// TestCallerPermissions: a producer that may only put events on one bus,
// a read-only operator in a group, an explicit deny, a queue policy that
// names a user, iam:PassRole, and keys made inactive and deleted.
func TestCallerPermissions(t *testing.T) {
	t.Parallel()
	e := setup(t)
	if _, err := e.eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String("orders")}); err != nil {
		t.Fatal(err)
	}
	const bus = "arn:aws:events:us-east-1:000000000000:event-bus/"
	producer := e.newCaller("producer", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"events:PutEvents","Resource":"`+bus+`orders"}]}`)
	put := func(c caller, busName string) error {
		out, err := c.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{{EventBusName: aws.String(busName),
			Source: aws.String("shop"), DetailType: aws.String("x"), Detail: aws.String(`{}`)}}})
		if err == nil && out.FailedEntryCount != 0 {
			t.Fatalf("PutEvents: %+v", out.Entries)
		}
		return err
	}
	if err := put(producer, "orders"); err != nil {
		t.Fatalf("producer on its bus: %v", err)
	}
	denied(t, put(producer, "default"), "AccessDeniedException", producer.arn, "events:PutEvents", bus+"default", noAllow+"events:PutEvents action")
	_, err := producer.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("r"), EventBusName: aws.String("orders"), EventPattern: aws.String(`{"source":["x"]}`)})
	denied(t, err, "AccessDeniedException", producer.arn, "events:PutRule", "arn:aws:events:us-east-1:000000000000:rule/orders/r", noAllow+"events:PutRule action")
	_, err = producer.iam.CreateUser(ctx, &awsiam.CreateUserInput{UserName: aws.String("evil")})
	denied(t, err, "AccessDenied", producer.arn, "iam:CreateUser", "arn:aws:iam::000000000000:user/evil", noAllow+"iam:CreateUser action")
	if _, err := e.iamClient().GetUser(ctx, &awsiam.GetUserInput{UserName: aws.String("evil")}); err == nil {
		t.Fatal("a refused CreateUser created the user")
	}

	// A read-only operator, by its group's managed policy; an explicit
	// deny in its own policy wins over the group's allow.
	root := e.iamClient()
	pol, err := root.CreatePolicy(ctx, &awsiam.CreatePolicyInput{PolicyName: aws.String("read-only"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["events:Describe*","events:List*"],"Resource":"*"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.CreateGroup(ctx, &awsiam.CreateGroupInput{GroupName: aws.String("operators")}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.AttachGroupPolicy(ctx, &awsiam.AttachGroupPolicyInput{GroupName: aws.String("operators"), PolicyArn: pol.Policy.Arn}); err != nil {
		t.Fatal(err)
	}
	operator := e.newCaller("operator", `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"events:DescribeEventBus","Resource":"`+bus+`orders"}]}`)
	if _, err := operator.eb.ListRules(ctx, &eventbridge.ListRulesInput{}); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("ListRules before joining the group: %v", err)
	}
	if _, err := root.AddUserToGroup(ctx, &awsiam.AddUserToGroupInput{GroupName: aws.String("operators"), UserName: aws.String("operator")}); err != nil {
		t.Fatal(err)
	}
	if _, err := operator.eb.ListRules(ctx, &eventbridge.ListRulesInput{}); err != nil {
		t.Fatalf("ListRules in the group: %v", err)
	}
	if _, err := operator.eb.DescribeEventBus(ctx, &eventbridge.DescribeEventBusInput{}); err != nil {
		t.Fatalf("DescribeEventBus default: %v", err)
	}
	_, err = operator.eb.DescribeEventBus(ctx, &eventbridge.DescribeEventBusInput{Name: aws.String("orders")})
	denied(t, err, "AccessDeniedException", operator.arn, "events:DescribeEventBus", bus+"orders", "with an explicit deny in an identity-based policy")
	_, err = operator.eb.DeleteEventBus(ctx, &eventbridge.DeleteEventBusInput{Name: aws.String("orders")})
	denied(t, err, "AccessDeniedException", operator.arn, "events:DeleteEventBus", bus+"orders", noAllow+"events:DeleteEventBus action")
	g, err := root.GetGroup(ctx, &awsiam.GetGroupInput{GroupName: aws.String("operators")})
	if err != nil || len(g.Users) != 1 || aws.ToString(g.Users[0].UserName) != "operator" {
		t.Fatalf("GetGroup: %+v, %v", g, err)
	}

	// A queue whose policy names the producer lets it send, with no
	// identity policy of its own; receiving stays refused.
	queue := e.createQueue(e.sqsClient(), "inbox", map[string]string{"Policy": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",` +
		`"Principal":{"AWS":"` + producer.arn + `"},"Action":"sqs:SendMessage","Resource":"arn:aws:sqs:us-east-1:000000000000:inbox"}]}`})
	if _, err := producer.sqs.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(queue), MessageBody: aws.String("hi")}); err != nil {
		t.Fatalf("SendMessage by queue policy: %v", err)
	}
	_, err = producer.sqs.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(queue)})
	denied(t, err, "AccessDenied", producer.arn, "sqs:ReceiveMessage", "arn:aws:sqs:us-east-1:000000000000:inbox", noAllow+"sqs:ReceiveMessage action")

	// A target's RoleArn needs iam:PassRole.
	builder := e.newCaller("builder", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["events:PutRule","events:PutTargets"],"Resource":"*"}]}`)
	if _, err := builder.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("r"), EventPattern: aws.String(`{"source":["x"]}`)}); err != nil {
		t.Fatal(err)
	}
	role := e.invokeRole()
	_, err = builder.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("r"), Targets: []types.Target{{Id: aws.String("q"),
		Arn: aws.String("arn:aws:sqs:us-east-1:000000000000:inbox"), RoleArn: role}}})
	denied(t, err, "AccessDeniedException", builder.arn, "iam:PassRole", *role, noAllow+"iam:PassRole action")

	// The secret is shown once; an inactive key and a deleted key are
	// refused at once.
	keys, err := root.ListAccessKeys(ctx, &awsiam.ListAccessKeysInput{UserName: aws.String("producer")})
	if err != nil || len(keys.AccessKeyMetadata) != 1 || aws.ToString(keys.AccessKeyMetadata[0].AccessKeyId) != producer.key {
		t.Fatalf("ListAccessKeys: %+v, %v", keys, err)
	}
	last, err := root.GetAccessKeyLastUsed(ctx, &awsiam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(producer.key)})
	if err != nil || aws.ToString(last.AccessKeyLastUsed.ServiceName) == "N/A" || last.AccessKeyLastUsed.LastUsedDate == nil {
		t.Fatalf("GetAccessKeyLastUsed: %+v, %v", last, err)
	}
	if _, err := root.UpdateAccessKey(ctx, &awsiam.UpdateAccessKeyInput{UserName: aws.String("producer"), AccessKeyId: aws.String(producer.key),
		Status: iamtypes.StatusTypeInactive}); err != nil {
		t.Fatal(err)
	}
	apiError(t, put(producer, "orders"), "UnrecognizedClientException", "The security token included in the request is invalid.")
	if _, err := root.UpdateAccessKey(ctx, &awsiam.UpdateAccessKeyInput{UserName: aws.String("producer"), AccessKeyId: aws.String(producer.key),
		Status: iamtypes.StatusTypeActive}); err != nil {
		t.Fatal(err)
	}
	if err := put(producer, "orders"); err != nil {
		t.Fatalf("active again: %v", err)
	}
	_, err = root.DeleteUser(ctx, &awsiam.DeleteUserInput{UserName: aws.String("producer")})
	apiError(t, err, "DeleteConflict", "Cannot delete entity, must delete access keys first.")
	if _, err := root.DeleteAccessKey(ctx, &awsiam.DeleteAccessKeyInput{UserName: aws.String("producer"), AccessKeyId: aws.String(producer.key)}); err != nil {
		t.Fatal(err)
	}
	apiError(t, put(producer, "orders"), "UnrecognizedClientException", "The security token included in the request is invalid.")
}
