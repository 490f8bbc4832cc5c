package awsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Client calls AWS JSON protocol services (bridgeport's own, for its
// command-line tools), signing with SigV4.
type Client struct {
	Endpoint        string // e.g. http://127.0.0.1:4010
	Region          string
	AccessKeyID     string
	SecretAccessKey string
	HTTP            *http.Client // nil means http.DefaultClient
}

// Call sends one operation: target is "<prefix>.<operation>", version "1.0"
// or "1.1", service the signing name. An AWS error answer is returned as
// an *Error.
//
// An in that is a json.RawMessage is sent as it is, unchecked.
func (c *Client) Call(ctx context.Context, service, version, target string, in, out any) error {
	body, ok := in.(json.RawMessage)
	if !ok {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.Endpoint, "/")+"/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-"+version)
	req.Header.Set("X-Amz-Target", target)
	Sign(req, body, c.AccessKeyID, c.SecretAccessKey, c.Region, service, time.Now())
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(data, &e)
		code := e.Type
		if i := strings.LastIndexByte(code, '#'); i >= 0 {
			code = code[i+1:]
		}
		if code == "" {
			return fmt.Errorf("%s: HTTP %d", target, resp.StatusCode)
		}
		return &Error{Code: code, Message: e.Message, Status: resp.StatusCode, QueryCode: strings.Split(resp.Header.Get("x-amzn-query-error"), ";")[0]}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

// Form sends a Query protocol request (form-encoded, as IAM takes them)
// and checks its answer; the XML result is not read.
func (c *Client) Form(ctx context.Context, service, form string) error {
	return c.FormXML(ctx, service, form, nil)
}

// FormXML is Form that decodes the answer's XML into out (nil: none).
func (c *Client) FormXML(ctx context.Context, service, form string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.Endpoint, "/")+"/", strings.NewReader(form))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	Sign(req, []byte(form), c.AccessKeyID, c.SecretAccessKey, c.Region, service, time.Now())
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Code    string `xml:"Error>Code"`
			Message string `xml:"Error>Message"`
		}
		_ = xml.Unmarshal(data, &e)
		return &Error{Code: e.Code, Message: e.Message, Status: resp.StatusCode}
	}
	if out != nil {
		return xml.Unmarshal(data, out)
	}
	return nil
}
