package server

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
)

// TestDynamicHttpParameters sends an event through a target whose
// HttpParameters mix JSONPaths and literals: path wildcards, headers and
// query strings take the event's values, a path the event lacks is empty,
// and the connection's parameters win on the same key.
func TestDynamicHttpParameters(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	e := newClusterNode(t, "", s)
	e.start()
	conn, err := e.eb.CreateConnection(ctx, &eventbridge.CreateConnectionInput{Name: aws.String("c"), AuthorizationType: types.ConnectionAuthorizationTypeApiKey,
		AuthParameters: &types.CreateConnectionAuthRequestParameters{
			ApiKeyAuthParameters: &types.CreateConnectionApiKeyAuthRequestParameters{ApiKeyName: aws.String("X-Key"), ApiKeyValue: aws.String("k")},
			InvocationHttpParameters: &types.ConnectionHttpParameters{
				HeaderParameters:      []types.ConnectionHeaderParameter{{Key: aws.String("X-Both"), Value: aws.String("connection")}},
				QueryStringParameters: []types.ConnectionQueryStringParameter{{Key: aws.String("both"), Value: aws.String("connection")}},
			}}})
	if err != nil {
		t.Fatal(err)
	}
	dest, err := e.eb.CreateApiDestination(ctx, &eventbridge.CreateApiDestinationInput{Name: aws.String("d"), ConnectionArn: conn.ConnectionArn,
		InvocationEndpoint: aws.String(s.URL + "/orders/*/lines/*/of/*"), HttpMethod: types.ApiDestinationHttpMethodPost})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("r"), EventPattern: aws.String(`{"source":["shop"]}`)}); err != nil {
		t.Fatal(err)
	}
	if out, err := e.eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("r"), Targets: []types.Target{{Id: aws.String("x"),
		Arn: dest.ApiDestinationArn, RoleArn: e.invokeRole(), HttpParameters: &types.HttpParameters{
			PathParameterValues:   []string{"$.detail.order", "fixed", "$.detail.customer"},
			HeaderParameters:      map[string]string{"X-Order": "$.detail.order", "X-Both": "target", "X-Missing": "$.detail.customer", "X-Kind": "$.detail-type"},
			QueryStringParameters: map[string]string{"qty": "$.detail.qty", "both": "target", "lit": "plain"},
		}}}}); err != nil || out.FailedEntryCount != 0 {
		t.Fatalf("PutTargets: %+v, %v", out, err)
	}
	if out, err := e.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{{Source: aws.String("shop"),
		DetailType: aws.String("Order Placed"), Detail: aws.String(`{"order":"o 9/1","qty":3}`)}}}); err != nil || out.FailedEntryCount != 0 {
		t.Fatalf("PutEvents: %+v, %v", out, err)
	}
	r := s.wait(t, 1)[0]
	// "o 9/1" is one path segment, escaped.
	if r.path != "/orders/o%209%2F1/lines/fixed/of/" {
		t.Errorf("path %q", r.path)
	}
	h := r.header
	if h.Get("X-Order") != "o 9/1" || h.Get("X-Both") != "connection" || h.Get("X-Kind") != "Order Placed" || h.Get("X-Key") != "k" {
		t.Errorf("headers %v", h)
	}
	if v := h.Values("X-Missing"); len(v) != 1 || v[0] != "" {
		t.Errorf("X-Missing: %q", v)
	}
	if q := r.query; q.Get("qty") != "3" || q.Get("both") != "connection" || q.Get("lit") != "plain" || len(q) != 3 {
		t.Errorf("query %v", q)
	}
}
