package iam

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"testing"

	"bridgeport/internal/awsapi"
	"bridgeport/internal/store"
)

// FuzzOperations sends arbitrary parameters to every IAM operation against
// a real store: each answers or returns an AWS error, never panics and
// never fails with an internal error.
func FuzzOperations(f *testing.F) {
	st, err := store.Open(context.Background(), store.Config{DataDir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	s := New(Config{Store: st, AccountID: "000000000000"})
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(s.Stop)
	ops := s.Operations()
	names := make([]string, 0, len(ops))
	for n := range ops {
		names = append(names, n)
	}
	slices.Sort(names)
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"events.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	for i, seed := range []string{
		"RoleName=r&AssumeRolePolicyDocument=" + url.QueryEscape(trust) + "&Tags.member.1.Key=k&Tags.member.1.Value=v",
		"RoleName=r&PolicyName=p&PolicyDocument=" + url.QueryEscape(`{"Version":"2012-10-17","Statement":{"Effect":"Deny","NotAction":"a:*","NotResource":"*"}}`),
		"PolicyArn=arn:aws:iam::000000000000:policy/p&VersionId=v1",
		"MaxItems=0&Marker=zz",
		"RoleName=r&MaxSessionDuration=99999999999999999999",
	} {
		f.Add(uint8(i), seed)
	}
	f.Fuzz(func(t *testing.T, op uint8, query string) {
		form, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		name := names[int(op)%len(names)]
		_, err = ops[name](ctx, awsapi.Params{Values: form})
		var aerr *awsapi.Error
		if err != nil && (!errors.As(err, &aerr) || aerr.HTTPStatus() >= 500) {
			t.Fatalf("%s(%q): %v", name, query, err)
		}
	})
}
