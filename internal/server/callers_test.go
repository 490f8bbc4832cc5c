package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"bridgeport/internal/natstest"
)

// caller is an IAM user's clients.
type caller struct {
	arn string
	eb  *eventbridge.Client
	sqs *awssqs.Client
	iam *awsiam.Client
	key string
	// secret is the key's secret (the console signs in with it).
	secret string
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
	return caller{arn: aws.ToString(u.User.Arn), key: aws.ToString(k.AccessKey.AccessKeyId), secret: aws.ToString(k.AccessKey.SecretAccessKey),
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
	// put sends one event to each bus named; a refused entry is an
	// AccessDeniedException of its own, the others are stored.
	put := func(c caller, busNames ...string) (refused []string, err error) {
		var entries []types.PutEventsRequestEntry
		for _, b := range busNames {
			entries = append(entries, types.PutEventsRequestEntry{EventBusName: aws.String(b), Source: aws.String("shop"),
				DetailType: aws.String("x"), Detail: aws.String(`{}`)})
		}
		out, err := c.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries})
		if err != nil {
			return nil, err
		}
		for i, e := range out.Entries {
			switch {
			case e.ErrorCode == nil && e.EventId != nil:
			case aws.ToString(e.ErrorCode) == "AccessDeniedException":
				refused = append(refused, busNames[i]+": "+aws.ToString(e.ErrorMessage))
			default:
				t.Fatalf("entry %d: %s %s", i, aws.ToString(e.ErrorCode), aws.ToString(e.ErrorMessage))
			}
		}
		return refused, nil
	}
	refused, err := put(producer, "orders", "default", "orders")
	want := "default: User: " + producer.arn + " is not authorized to perform: events:PutEvents on resource: " + bus + "default " + noAllow + "events:PutEvents action"
	if err != nil || len(refused) != 1 || refused[0] != want {
		t.Fatalf("producer on its bus and the default bus: %v, %q", err, refused)
	}
	// A condition on events:source refuses the entries of other sources.
	if _, err := e.iamClient().PutUserPolicy(ctx, &awsiam.PutUserPolicyInput{UserName: aws.String("producer"), PolicyName: aws.String("source"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"events:PutEvents","Resource":"*",` +
			`"Condition":{"StringNotEquals":{"events:source":"shop"}}}]}`)}); err != nil {
		t.Fatal(err)
	}
	out, err := producer.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{
		{EventBusName: aws.String("orders"), Source: aws.String("shop"), DetailType: aws.String("x"), Detail: aws.String(`{}`)},
		{EventBusName: aws.String("orders"), Source: aws.String("billing"), DetailType: aws.String("x"), Detail: aws.String(`{}`)}}})
	if err != nil || out.FailedEntryCount != 1 || out.Entries[0].EventId == nil || aws.ToString(out.Entries[1].ErrorCode) != "AccessDeniedException" ||
		!strings.HasSuffix(aws.ToString(out.Entries[1].ErrorMessage), "with an explicit deny in an identity-based policy") {
		t.Fatalf("a source the policy denies: %+v, %v", out, err)
	}
	_, err = producer.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("r"), EventBusName: aws.String("orders"), EventPattern: aws.String(`{"source":["x"]}`)})
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
	if err != nil || len(g.Users) != 1 || aws.ToString(g.Users[0].UserName) != "operator" || aws.ToString(g.Group.GroupName) != "operators" {
		t.Fatalf("GetGroup: %+v, %v", g, err)
	}
	// The lists, a page at a time.
	users, err := root.ListUsers(ctx, &awsiam.ListUsersInput{MaxItems: aws.Int32(1)})
	if err != nil || len(users.Users) != 1 || aws.ToString(users.Users[0].UserName) != "operator" || !users.IsTruncated {
		t.Fatalf("ListUsers page 1: %+v, %v", users, err)
	}
	users, err = root.ListUsers(ctx, &awsiam.ListUsersInput{Marker: users.Marker})
	if err != nil || len(users.Users) != 1 || aws.ToString(users.Users[0].UserName) != "producer" || users.IsTruncated {
		t.Fatalf("ListUsers page 2: %+v, %v", users, err)
	}
	groups, err := root.ListGroupsForUser(ctx, &awsiam.ListGroupsForUserInput{UserName: aws.String("operator")})
	if err != nil || len(groups.Groups) != 1 || aws.ToString(groups.Groups[0].GroupName) != "operators" {
		t.Fatalf("ListGroupsForUser: %+v, %v", groups, err)
	}
	attached, err := root.ListAttachedGroupPolicies(ctx, &awsiam.ListAttachedGroupPoliciesInput{GroupName: aws.String("operators")})
	if err != nil || len(attached.AttachedPolicies) != 1 || aws.ToString(attached.AttachedPolicies[0].PolicyArn) != aws.ToString(pol.Policy.Arn) ||
		aws.ToString(attached.AttachedPolicies[0].PolicyName) != "read-only" {
		t.Fatalf("ListAttachedGroupPolicies: %+v, %v", attached, err)
	}
	inline, err := root.ListUserPolicies(ctx, &awsiam.ListUserPoliciesInput{UserName: aws.String("producer")})
	if err != nil || strings.Join(inline.PolicyNames, ",") != "p,source" {
		t.Fatalf("ListUserPolicies: %+v, %v", inline, err)
	}

	// A queue whose policy names the producer lets it send, with no
	// identity policy of its own; receiving stays refused.
	queue := e.createQueue(e.sqsClient(), "inbox", map[string]string{"Policy": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",` +
		`"Principal":{"AWS":"` + producer.arn + `"},"Action":"sqs:SendMessage","Resource":"arn:aws:sqs:us-east-1:000000000000:inbox"}]}`})
	if _, err := producer.sqs.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(queue), MessageBody: aws.String("hi")}); err != nil {
		t.Fatalf("SendMessage by queue policy: %v", err)
	}
	_, err = producer.sqs.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(queue)})
	denied(t, err, "AccessDenied", producer.arn, "sqs:receivemessage", "arn:aws:sqs:us-east-1:000000000000:inbox", noAllow+"sqs:receivemessage action")

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
	_, err = put(producer, "orders")
	apiError(t, err, "UnrecognizedClientException", "The security token included in the request is invalid.")
	if _, err := root.UpdateAccessKey(ctx, &awsiam.UpdateAccessKeyInput{UserName: aws.String("producer"), AccessKeyId: aws.String(producer.key),
		Status: iamtypes.StatusTypeActive}); err != nil {
		t.Fatal(err)
	}
	if refused, err := put(producer, "orders"); err != nil || len(refused) != 0 {
		t.Fatalf("active again: %v %q", err, refused)
	}
	_, err = root.DeleteUser(ctx, &awsiam.DeleteUserInput{UserName: aws.String("producer")})
	apiError(t, err, "DeleteConflict", "Cannot delete entity, must delete access keys first.")
	if _, err := root.DeleteAccessKey(ctx, &awsiam.DeleteAccessKeyInput{UserName: aws.String("producer"), AccessKeyId: aws.String(producer.key)}); err != nil {
		t.Fatal(err)
	}
	_, err = put(producer, "orders")
	apiError(t, err, "UnrecognizedClientException", "The security token included in the request is invalid.")
}

// TestAssumeRole: a CI job's user assumes a deploy role (the trust policy
// names it) and acts with the role's permissions through temporary
// credentials; GetCallerIdentity and GetSessionToken answer as AWS does;
// a trust policy that does not name the caller refuses it; a session
// token is required with its key, and an expired session is refused.
func TestAssumeRole(t *testing.T) {
	t.Parallel()
	e := setup(t)
	root := e.iamClient()
	ci := e.newCaller("ci", "")
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + ci.arn + `"},"Action":"sts:AssumeRole"}]}`
	role, err := root.CreateRole(ctx, &awsiam.CreateRoleInput{RoleName: aws.String("deploy"), AssumeRolePolicyDocument: aws.String(trust)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.PutRolePolicy(ctx, &awsiam.PutRolePolicyInput{RoleName: aws.String("deploy"), PolicyName: aws.String("rules"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["events:PutRule","events:DescribeRule"],"Resource":"*"}]}`)}); err != nil {
		t.Fatal(err)
	}
	stsFor := func(creds aws.CredentialsProvider) *sts.Client {
		return sts.New(sts.Options{BaseEndpoint: aws.String("http://" + e.srv.Addr()), Region: "us-east-1", Credentials: creds, RetryMaxAttempts: 1})
	}
	ciCreds := ci.eb.Options().Credentials
	who, err := stsFor(ciCreds).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(who.Arn) != ci.arn || aws.ToString(who.Account) != "000000000000" || !strings.HasPrefix(aws.ToString(who.UserId), "AIDA") {
		t.Fatalf("GetCallerIdentity as ci: %+v, %v", who, err)
	}
	_, err = stsFor(ciCreds).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: role.Role.Arn, RoleSessionName: aws.String("build-7"), DurationSeconds: aws.Int32(7200)})
	apiError(t, err, "ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
	out, err := stsFor(ciCreds).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: role.Role.Arn, RoleSessionName: aws.String("build-7")})
	if err != nil {
		t.Fatal(err)
	}
	sessionArn := "arn:aws:sts::000000000000:assumed-role/deploy/build-7"
	if aws.ToString(out.AssumedRoleUser.Arn) != sessionArn || aws.ToString(out.AssumedRoleUser.AssumedRoleId) != aws.ToString(role.Role.RoleId)+":build-7" ||
		!strings.HasPrefix(aws.ToString(out.Credentials.AccessKeyId), "ASIA") || time.Until(aws.ToTime(out.Credentials.Expiration)) < 59*time.Minute {
		t.Fatalf("AssumeRole: %+v %+v", out.AssumedRoleUser, out.Credentials)
	}
	c := out.Credentials
	session := credentials.NewStaticCredentialsProvider(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
	eb := eventbridge.New(eventbridge.Options{BaseEndpoint: aws.String("http://" + e.srv.Addr()), Region: "us-east-1", Credentials: session, RetryMaxAttempts: 1})
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("deployed"), EventPattern: aws.String(`{"source":["x"]}`)}); err != nil {
		t.Fatalf("PutRule as the role: %v", err)
	}
	_, err = eb.DeleteRule(ctx, &eventbridge.DeleteRuleInput{Name: aws.String("deployed")})
	denied(t, err, "AccessDeniedException", sessionArn, "events:DeleteRule", "arn:aws:events:us-east-1:000000000000:rule/deployed", noAllow+"events:DeleteRule action")
	if who, err := stsFor(session).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil || aws.ToString(who.Arn) != sessionArn {
		t.Fatalf("GetCallerIdentity as the role: %+v, %v", who, err)
	}
	_, err = stsFor(session).GetSessionToken(ctx, &sts.GetSessionTokenInput{})
	apiError(t, err, "AccessDenied", "Cannot call GetSessionToken with session credentials")
	// The key without its token, or with another, is refused.
	noToken := credentials.NewStaticCredentialsProvider(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), "")
	_, err = stsFor(noToken).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	apiError(t, err, "InvalidClientTokenId", "The security token included in the request is invalid.")

	// Another user is not in the trust policy.
	other := e.newCaller("other", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`)
	_, err = stsFor(other.eb.Options().Credentials).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: role.Role.Arn, RoleSessionName: aws.String("xx")})
	apiError(t, err, "AccessDenied", "User: "+other.arn+" is not authorized to perform: sts:AssumeRole on resource: "+aws.ToString(role.Role.Arn))
	// The root user may not assume roles.
	_, err = stsFor(credentials.NewStaticCredentialsProvider(testKey, testSecret, "")).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: role.Role.Arn, RoleSessionName: aws.String("xx")})
	apiError(t, err, "AccessDenied", "Roles may not be assumed by root accounts.")

	// A user's session token carries the user's permissions, and expires.
	tok, err := stsFor(ciCreds).GetSessionToken(ctx, &sts.GetSessionTokenInput{DurationSeconds: aws.Int32(900)})
	if err != nil || time.Until(aws.ToTime(tok.Credentials.Expiration)) > 15*time.Minute {
		t.Fatalf("GetSessionToken: %+v, %v", tok, err)
	}
	tc := tok.Credentials
	userSession := credentials.NewStaticCredentialsProvider(aws.ToString(tc.AccessKeyId), aws.ToString(tc.SecretAccessKey), aws.ToString(tc.SessionToken))
	if who, err := stsFor(userSession).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil || aws.ToString(who.Arn) != ci.arn {
		t.Fatalf("GetCallerIdentity with the session token: %+v, %v", who, err)
	}
	// The session is made to expire by changing its record as a clock
	// would: its expiry moved into the past.
	e.expireSession(aws.ToString(tc.AccessKeyId))
	_, err = stsFor(userSession).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	apiError(t, err, "ExpiredToken", "The security token included in the request is expired")
}

// expireSession moves a session's expiry into the past, in the store, as
// the passing of its time would.
func (e *env) expireSession(id string) {
	e.t.Helper()
	st := e.srv.store
	entry, err := st.Get(ctx, "iam.session."+id)
	if err != nil {
		e.t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(entry.Value, &rec); err != nil {
		e.t.Fatal(err)
	}
	rec["expires"] = time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	data, _ := json.Marshal(rec)
	if _, err := st.Update(ctx, "iam.session."+id, data, entry.Revision); err != nil {
		e.t.Fatal(err)
	}
	// The change reaches the node's memory through its watch.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if k, ok := e.srv.iam.LookupKey(id); ok && k.Expires.Before(time.Now()) {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatal("the expired session did not reach the node")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBusPermissions: PutPermission and RemovePermission write the bus's
// policy as AWS does, and the policy grants PutEvents to a caller with no
// policy of its own.
func TestBusPermissions(t *testing.T) {
	t.Parallel()
	e := setup(t)
	if _, err := e.eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String("shared")}); err != nil {
		t.Fatal(err)
	}
	nobody := e.newCaller("nobody", "")
	send := func() *types.PutEventsResultEntry {
		out, err := nobody.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{{EventBusName: aws.String("shared"),
			Source: aws.String("s"), DetailType: aws.String("x"), Detail: aws.String(`{}`)}}})
		if err != nil {
			t.Fatal(err)
		}
		return &out.Entries[0]
	}
	if r := send(); aws.ToString(r.ErrorCode) != "AccessDeniedException" {
		t.Fatalf("before any permission: %+v", r)
	}
	for _, in := range []*eventbridge.PutPermissionInput{
		{EventBusName: aws.String("shared"), Action: aws.String("events:PutEvents"), Principal: aws.String("*"), StatementId: aws.String("anyone")},
		{EventBusName: aws.String("shared"), Action: aws.String("events:PutEvents"), Principal: aws.String("111122223333"), StatementId: aws.String("partner")},
		{EventBusName: aws.String("shared"), Action: aws.String("events:PutEvents"), Principal: aws.String("444455556666"), StatementId: aws.String("partner")},
	} {
		if _, err := e.eb.PutPermission(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	d, err := e.eb.DescribeEventBus(ctx, &eventbridge.DescribeEventBusInput{Name: aws.String("shared")})
	const arn = "arn:aws:events:us-east-1:000000000000:event-bus/shared"
	want := `{"Version":"2012-10-17","Statement":[` +
		`{"Sid":"anyone","Effect":"Allow","Principal":"*","Action":"events:PutEvents","Resource":"` + arn + `"},` +
		`{"Sid":"partner","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"events:PutEvents","Resource":"` + arn + `"}]}`
	if err != nil || aws.ToString(d.Policy) != want {
		t.Fatalf("DescribeEventBus policy:\n%s\nwant\n%s (%v)", aws.ToString(d.Policy), want, err)
	}
	if r := send(); r.EventId == nil {
		t.Fatalf("with the bus open to anyone: %+v", r)
	}
	if _, err := e.eb.RemovePermission(ctx, &eventbridge.RemovePermissionInput{EventBusName: aws.String("shared"), StatementId: aws.String("anyone")}); err != nil {
		t.Fatal(err)
	}
	if r := send(); aws.ToString(r.ErrorCode) != "AccessDeniedException" {
		t.Fatalf("after removing the statement: %+v", r)
	}
	_, err = e.eb.RemovePermission(ctx, &eventbridge.RemovePermissionInput{EventBusName: aws.String("shared"), StatementId: aws.String("anyone")})
	apiError(t, err, "ResourceNotFoundException", "Statement with the provided id does not exist.")
	_, err = e.eb.PutPermission(ctx, &eventbridge.PutPermissionInput{EventBusName: aws.String("nope"), Action: aws.String("events:PutEvents"),
		Principal: aws.String("*"), StatementId: aws.String("x")})
	apiError(t, err, "ResourceNotFoundException", "Event bus nope does not exist.")
	if _, err := e.eb.RemovePermission(ctx, &eventbridge.RemovePermissionInput{EventBusName: aws.String("shared"), RemoveAllPermissions: true}); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.eb.DescribeEventBus(ctx, &eventbridge.DescribeEventBusInput{Name: aws.String("shared")}); d.Policy != nil {
		t.Fatalf("policy after RemoveAllPermissions: %s", aws.ToString(d.Policy))
	}
	// The caller may not change the policy itself.
	_, err = nobody.eb.PutPermission(ctx, &eventbridge.PutPermissionInput{EventBusName: aws.String("shared"), Action: aws.String("events:PutEvents"),
		Principal: aws.String("*"), StatementId: aws.String("mine")})
	denied(t, err, "AccessDeniedException", nobody.arn, "events:PutPermission", "*", noAllow+"events:PutPermission action")
}

// TestClusterRevocation: a user and key made through one node sign
// requests on the other at once, and a key made inactive through one node
// is refused by the other within a moment (measured and logged).
func TestClusterRevocation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS cluster")
	}
	t.Parallel()
	urls, s := natstest.Cluster(t, 3), newSink(t)
	a, b := clusterNode(t, urls[0], s), clusterNode(t, urls[1], s)
	user := a.newCaller("producer", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"events:ListRules","Resource":"*"}]}`)
	creds := user.eb.Options().Credentials
	onB := eventbridge.New(eventbridge.Options{BaseEndpoint: aws.String("http://" + b.srv.Addr()), Region: "us-east-1", Credentials: creds, RetryMaxAttempts: 1})
	if _, err := onB.ListRules(ctx, &eventbridge.ListRulesInput{}); err != nil {
		t.Fatalf("the new key on the other node: %v", err)
	}
	if _, err := a.iamClient().UpdateAccessKey(ctx, &awsiam.UpdateAccessKeyInput{UserName: aws.String("producer"), AccessKeyId: aws.String(user.key),
		Status: iamtypes.StatusTypeInactive}); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	for {
		_, err := onB.ListRules(ctx, &eventbridge.ListRulesInput{})
		if err != nil {
			apiError(t, err, "UnrecognizedClientException", "The security token included in the request is invalid.")
			break
		}
		if time.Since(revoked) > 30*time.Second {
			t.Fatal("the other node still accepts the key 30 s after it was made inactive")
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("key made inactive through node A; node B refused it %s later", time.Since(revoked).Round(time.Microsecond))
}
