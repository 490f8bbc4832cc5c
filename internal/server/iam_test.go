package server

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
)

const eventsTrust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

const invokeAny = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["events:InvokeApiDestination"],"Resource":["arn:aws:events:us-east-1:000000000000:api-destination/*"]}]}`

// iamClient returns an SDK client for the server's IAM API. IAM is global:
// the SDK signs for us-east-1.
func (e *env) iamClient() *awsiam.Client {
	return awsiam.New(awsiam.Options{
		BaseEndpoint:     aws.String("http://" + e.srv.Addr()),
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider(testKey, testSecret, ""),
		RetryMaxAttempts: 1,
	})
}

// invokeRole creates (once) the role "invoke", which EventBridge may
// assume and which may invoke every API destination, and returns its ARN.
func (e *env) invokeRole() *string {
	e.t.Helper()
	c := e.iamClient()
	const arn = "arn:aws:iam::000000000000:role/invoke"
	if _, err := c.GetRole(ctx, &awsiam.GetRoleInput{RoleName: aws.String("invoke")}); err == nil {
		return aws.String(arn)
	}
	if _, err := c.CreateRole(ctx, &awsiam.CreateRoleInput{RoleName: aws.String("invoke"), AssumeRolePolicyDocument: aws.String(eventsTrust)}); err != nil {
		e.t.Fatal(err)
	}
	if _, err := c.PutRolePolicy(ctx, &awsiam.PutRolePolicyInput{RoleName: aws.String("invoke"), PolicyName: aws.String("invoke"),
		PolicyDocument: aws.String(invokeAny)}); err != nil {
		e.t.Fatal(err)
	}
	return aws.String(arn)
}

func decodeDoc(t *testing.T, s *string) string {
	t.Helper()
	doc, err := url.QueryUnescape(aws.ToString(s))
	if err != nil {
		t.Fatalf("document %q is not URL-encoded: %v", aws.ToString(s), err)
	}
	return doc
}

func TestIAMRoles(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := e.iamClient()
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:SourceAccount":"000000000000"}}}]}`
	out, err := c.CreateRole(ctx, &awsiam.CreateRoleInput{RoleName: aws.String("Invoker"), Path: aws.String("/service/"),
		AssumeRolePolicyDocument: aws.String(trust), Description: aws.String("EventBridge + hooks"), MaxSessionDuration: aws.Int32(7200),
		Tags: []iamtypes.Tag{{Key: aws.String("team"), Value: aws.String("a")}}})
	if err != nil {
		t.Fatal(err)
	}
	r := out.Role
	if aws.ToString(r.Arn) != "arn:aws:iam::000000000000:role/service/Invoker" || !strings.HasPrefix(aws.ToString(r.RoleId), "AROA") ||
		aws.ToInt32(r.MaxSessionDuration) != 7200 || decodeDoc(t, r.AssumeRolePolicyDocument) != trust || len(r.Tags) != 1 || r.CreateDate == nil {
		t.Errorf("CreateRole = %+v", r)
	}
	// Names are unique whatever their case.
	_, err = c.CreateRole(ctx, &awsiam.CreateRoleInput{RoleName: aws.String("invoker"), AssumeRolePolicyDocument: aws.String(trust)})
	var exists *iamtypes.EntityAlreadyExistsException
	if !errors.As(err, &exists) || exists.ErrorMessage() != "Role with name invoker already exists." {
		t.Errorf("duplicate role: %v", err)
	}
	got, err := c.GetRole(ctx, &awsiam.GetRoleInput{RoleName: aws.String("Invoker")})
	if err != nil || aws.ToString(got.Role.Description) != "EventBridge + hooks" {
		t.Errorf("GetRole = %+v, %v", got, err)
	}
	_, err = c.GetRole(ctx, &awsiam.GetRoleInput{RoleName: aws.String("nobody")})
	var missing *iamtypes.NoSuchEntityException
	if !errors.As(err, &missing) || missing.ErrorMessage() != "The role with name nobody cannot be found." {
		t.Errorf("missing role: %v", err)
	}

	// Malformed documents, with IAM's reasons.
	for doc, reason := range map[string]string{
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}`:                                              "Missing required field Principal",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"s3:GetObject"}]}`: "AssumeRole policy may only specify STS AssumeRole actions.",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Resource":"*"}]}`:               "Has prohibited field Resource",
		`not json`: "Syntax errors in policy.",
	} {
		_, err := c.CreateRole(ctx, &awsiam.CreateRoleInput{RoleName: aws.String("bad"), AssumeRolePolicyDocument: aws.String(doc)})
		var mal *iamtypes.MalformedPolicyDocumentException
		if !errors.As(err, &mal) || mal.ErrorMessage() != reason {
			t.Errorf("trust %s: %v, want %q", doc, err, reason)
		}
	}
	_, err = c.CreateRole(ctx, &awsiam.CreateRoleInput{RoleName: aws.String("bad name"), AssumeRolePolicyDocument: aws.String(trust)})
	apiError(t, err, "ValidationError", `1 validation error detected: Value 'bad name' at 'roleName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]+`)

	// Inline policies.
	if _, err := c.PutRolePolicy(ctx, &awsiam.PutRolePolicyInput{RoleName: aws.String("Invoker"), PolicyName: aws.String("hooks"),
		PolicyDocument: aws.String(invokeAny)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.PutRolePolicy(ctx, &awsiam.PutRolePolicyInput{RoleName: aws.String("Invoker"), PolicyName: aws.String("p"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"events:*","Resource":"*"}]}`)})
	apiError(t, err, "MalformedPolicyDocument", "Policy document should not specify a principal.")
	rp, err := c.GetRolePolicy(ctx, &awsiam.GetRolePolicyInput{RoleName: aws.String("Invoker"), PolicyName: aws.String("hooks")})
	if err != nil || decodeDoc(t, rp.PolicyDocument) != invokeAny {
		t.Errorf("GetRolePolicy = %+v, %v", rp, err)
	}
	names, err := c.ListRolePolicies(ctx, &awsiam.ListRolePoliciesInput{RoleName: aws.String("Invoker")})
	if err != nil || len(names.PolicyNames) != 1 || names.PolicyNames[0] != "hooks" {
		t.Errorf("ListRolePolicies = %+v, %v", names, err)
	}

	// Managed policies.
	pol, err := c.CreatePolicy(ctx, &awsiam.CreatePolicyInput{PolicyName: aws.String("invoke-all"), PolicyDocument: aws.String(invokeAny),
		Description: aws.String("d")})
	if err != nil {
		t.Fatal(err)
	}
	parn := pol.Policy.Arn
	if aws.ToString(parn) != "arn:aws:iam::000000000000:policy/invoke-all" || aws.ToString(pol.Policy.DefaultVersionId) != "v1" {
		t.Errorf("CreatePolicy = %+v", pol.Policy)
	}
	if _, err := c.AttachRolePolicy(ctx, &awsiam.AttachRolePolicyInput{RoleName: aws.String("Invoker"), PolicyArn: parn}); err != nil {
		t.Fatal(err)
	}
	gp, err := c.GetPolicy(ctx, &awsiam.GetPolicyInput{PolicyArn: parn})
	if err != nil || aws.ToInt32(gp.Policy.AttachmentCount) != 1 {
		t.Errorf("GetPolicy = %+v, %v", gp, err)
	}
	v, err := c.GetPolicyVersion(ctx, &awsiam.GetPolicyVersionInput{PolicyArn: parn, VersionId: aws.String("v1")})
	if err != nil || decodeDoc(t, v.PolicyVersion.Document) != invokeAny || !v.PolicyVersion.IsDefaultVersion {
		t.Errorf("GetPolicyVersion = %+v, %v", v, err)
	}
	att, err := c.ListAttachedRolePolicies(ctx, &awsiam.ListAttachedRolePoliciesInput{RoleName: aws.String("Invoker")})
	if err != nil || len(att.AttachedPolicies) != 1 || aws.ToString(att.AttachedPolicies[0].PolicyName) != "invoke-all" {
		t.Errorf("ListAttachedRolePolicies = %+v, %v", att, err)
	}
	list, err := c.ListPolicies(ctx, &awsiam.ListPoliciesInput{Scope: iamtypes.PolicyScopeTypeLocal})
	if err != nil || len(list.Policies) != 1 {
		t.Errorf("ListPolicies = %+v, %v", list, err)
	}
	roles, err := c.ListRoles(ctx, &awsiam.ListRolesInput{})
	if err != nil || len(roles.Roles) != 1 || roles.IsTruncated {
		t.Errorf("ListRoles = %+v, %v", roles, err)
	}

	// Deleting in the wrong order is refused, as in IAM.
	_, err = c.DeletePolicy(ctx, &awsiam.DeletePolicyInput{PolicyArn: parn})
	apiError(t, err, "DeleteConflict", "Cannot delete a policy attached to entities.")
	_, err = c.DeleteRole(ctx, &awsiam.DeleteRoleInput{RoleName: aws.String("Invoker")})
	apiError(t, err, "DeleteConflict", "Cannot delete entity, must delete policies first.")
	if _, err := c.DeleteRolePolicy(ctx, &awsiam.DeleteRolePolicyInput{RoleName: aws.String("Invoker"), PolicyName: aws.String("hooks")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteRole(ctx, &awsiam.DeleteRoleInput{RoleName: aws.String("Invoker")})
	apiError(t, err, "DeleteConflict", "Cannot delete entity, must detach all policies first.")
	if _, err := c.DetachRolePolicy(ctx, &awsiam.DetachRolePolicyInput{RoleName: aws.String("Invoker"), PolicyArn: parn}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteRole(ctx, &awsiam.DeleteRoleInput{RoleName: aws.String("Invoker")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeletePolicy(ctx, &awsiam.DeletePolicyInput{PolicyArn: parn}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetPolicy(ctx, &awsiam.GetPolicyInput{PolicyArn: parn})
	apiError(t, err, "NoSuchEntity", "Policy arn:aws:iam::000000000000:policy/invoke-all does not exist or is not attachable.")
}

// TestRolePermissions is the troubleshooting guide's permission failures,
// end to end: a role that may invoke the destination delivers; without the
// permission, with a permission for another destination, with an explicit
// deny, with a trust policy that does not name EventBridge, or with no role
// at all, the event goes to the dead-letter queue with the right code and
// no request reaches the endpoint. Changes apply to the next event, without
// a restart.
func TestRolePermissions(t *testing.T) {
	t.Parallel()
	d := setupDelivery(t, func(int) int { return 200 }, nil)
	c := d.iamClient()
	sq, dlq := d.withDLQ(dlqPolicy("arn:aws:sqs:us-east-1:000000000000:dlq"))
	dest := d.destArn()
	_, err := d.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("r"), Targets: []types.Target{{Id: aws.String("norole"), Arn: aws.String(dest)}}})
	apiError(t, err, "ValidationException", "RoleArn is required for target "+dest+".")
	if _, err := c.CreateRole(ctx, &awsiam.CreateRoleInput{RoleName: aws.String("hooks"), AssumeRolePolicyDocument: aws.String(eventsTrust)}); err != nil {
		t.Fatal(err)
	}
	pol, err := c.CreatePolicy(ctx, &awsiam.CreatePolicyInput{PolicyName: aws.String("invoke-d"), PolicyDocument: aws.String(
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"events:InvokeApiDestination","Resource":"` + dest + `"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AttachRolePolicy(ctx, &awsiam.AttachRolePolicyInput{RoleName: aws.String("hooks"), PolicyArn: pol.Policy.Arn}); err != nil {
		t.Fatal(err)
	}
	d.setTarget(func(t *types.Target) { t.RoleArn = aws.String("arn:aws:iam::000000000000:role/hooks") })

	calls := 0
	deadLettered := 0
	expectDelivered := func() {
		t.Helper()
		d.put()
		calls++
		d.sink.wait(t, calls)
	}
	expectDenied := func(code string) {
		t.Helper()
		d.put()
		deadLettered++
		m := receiveDLQ(t, sq, dlq, 1)[0]
		if a := attrs(m); a["ERROR_CODE"] != code || a["RETRY_ATTEMPTS"] != "0" || a["EXHAUSTED_RETRY_CONDITION"] != "" {
			t.Errorf("dead letter %d: %v, want %s", deadLettered, a, code)
		}
		if n := len(d.sink.received()); n != calls {
			t.Errorf("the endpoint got %d requests, want %d: a denied invocation sent one", n, calls)
		}
	}
	expectDelivered()

	// Detach the permission: NO_PERMISSIONS.
	if _, err := c.DetachRolePolicy(ctx, &awsiam.DetachRolePolicyInput{RoleName: aws.String("hooks"), PolicyArn: pol.Policy.Arn}); err != nil {
		t.Fatal(err)
	}
	expectDenied("NO_PERMISSIONS")

	// A permission for another destination does not cover this one.
	other := strings.Replace(dest, "/d/", "/other/", 1)
	if _, err := c.PutRolePolicy(ctx, &awsiam.PutRolePolicyInput{RoleName: aws.String("hooks"), PolicyName: aws.String("other"), PolicyDocument: aws.String(
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"events:InvokeApiDestination","Resource":"` + other + `"}]}`)}); err != nil {
		t.Fatal(err)
	}
	expectDenied("NO_PERMISSIONS")

	// Attached again: delivered; then an explicit deny wins over it.
	if _, err := c.AttachRolePolicy(ctx, &awsiam.AttachRolePolicyInput{RoleName: aws.String("hooks"), PolicyArn: pol.Policy.Arn}); err != nil {
		t.Fatal(err)
	}
	expectDelivered()
	if _, err := c.PutRolePolicy(ctx, &awsiam.PutRolePolicyInput{RoleName: aws.String("hooks"), PolicyName: aws.String("deny"), PolicyDocument: aws.String(
		`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"events:*","Resource":"*"}]}`)}); err != nil {
		t.Fatal(err)
	}
	expectDenied("NO_PERMISSIONS")
	if _, err := c.DeleteRolePolicy(ctx, &awsiam.DeleteRolePolicyInput{RoleName: aws.String("hooks"), PolicyName: aws.String("deny")}); err != nil {
		t.Fatal(err)
	}
	expectDelivered()

	// A trust policy for another service: FAILED_TO_ASSUME_ROLE.
	if _, err := c.UpdateAssumeRolePolicy(ctx, &awsiam.UpdateAssumeRolePolicyInput{RoleName: aws.String("hooks"), PolicyDocument: aws.String(
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)}); err != nil {
		t.Fatal(err)
	}
	expectDenied("FAILED_TO_ASSUME_ROLE")
	// A trust policy for EventBridge, but only for another rule.
	if _, err := c.UpdateAssumeRolePolicy(ctx, &awsiam.UpdateAssumeRolePolicyInput{RoleName: aws.String("hooks"), PolicyDocument: aws.String(
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sts:AssumeRole",
		  "Condition":{"ArnEquals":{"aws:SourceArn":"arn:aws:events:us-east-1:000000000000:rule/other"}}}]}`)}); err != nil {
		t.Fatal(err)
	}
	expectDenied("FAILED_TO_ASSUME_ROLE")
	if _, err := c.UpdateAssumeRolePolicy(ctx, &awsiam.UpdateAssumeRolePolicyInput{RoleName: aws.String("hooks"), PolicyDocument: aws.String(eventsTrust)}); err != nil {
		t.Fatal(err)
	}
	expectDelivered()

	// A role that does not exist.
	d.setTarget(func(t *types.Target) { t.RoleArn = aws.String("arn:aws:iam::000000000000:role/ghost") })
	expectDenied("FAILED_TO_ASSUME_ROLE")
}
