package cognitolocal

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Client calls a Cognito-compatible JSON API (cognito-local's POST /).
type Client struct {
	URL  string
	HTTP *http.Client
}

// NewClient talks to the API at baseURL.
func NewClient(baseURL string) *Client {
	return &Client{URL: baseURL, HTTP: &http.Client{Timeout: 10 * time.Second}}
}

// APIError is an error answer of the API.
type APIError struct {
	Op      string
	Status  int
	Type    string `json:"__type"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *APIError) Error() string {
	return fmt.Sprintf("cognito %s: HTTP %d %s%s: %s", e.Op, e.Status, e.Type, e.Code, e.Message)
}

// Kind is the error's type name, e.g. "UsernameExistsException".
func (e *APIError) Kind() string {
	if e.Type != "" {
		return e.Type
	}
	return e.Code
}

func (c *Client) call(ctx context.Context, op string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+"/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AWSCognitoIdentityProviderService."+op)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }() // read-only
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		e := &APIError{Op: op, Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || (e.Type == "" && e.Code == "" && e.Message == "") {
			e.Message = string(data)
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("cognito %s: decode %q: %w", op, data, err)
	}
	return nil
}

// Call sends any operation; in and out are JSON-marshalled structures.
func (c *Client) Call(ctx context.Context, op string, in, out any) error {
	return c.call(ctx, op, in, out)
}

// UserPool is the part of a pool description the tests use.
type UserPool struct {
	ID   string `json:"Id"`
	Name string `json:"Name"`
	Arn  string `json:"Arn"`
}

// CreateUserPool creates a pool with the given name.
func (c *Client) CreateUserPool(ctx context.Context, name string) (UserPool, error) {
	var out struct{ UserPool UserPool }
	err := c.call(ctx, "CreateUserPool", map[string]any{"PoolName": name}, &out)
	return out.UserPool, err
}

// ListUserPools lists the pools (up to 60).
func (c *Client) ListUserPools(ctx context.Context) ([]UserPool, error) {
	var out struct{ UserPools []UserPool }
	err := c.call(ctx, "ListUserPools", map[string]any{"MaxResults": 60}, &out)
	return out.UserPools, err
}

// AppClient is a user pool (app) client.
type AppClient struct {
	ClientID     string `json:"ClientId"`
	ClientName   string `json:"ClientName"`
	ClientSecret string `json:"ClientSecret,omitempty"`
	UserPoolID   string `json:"UserPoolId"`
}

// ClientOptions are the optional settings of CreateUserPoolClient.
type ClientOptions struct {
	GenerateSecret    bool
	CallbackURLs      []string
	LogoutURLs        []string
	AllowedOAuthFlows []string // e.g. "code"
	OAuthScopes       []string // e.g. "openid", "email"
}

// CreateUserPoolClient creates an app client.
func (c *Client) CreateUserPoolClient(ctx context.Context, poolID, name string, o ClientOptions) (AppClient, error) {
	in := map[string]any{
		"UserPoolId":        poolID,
		"ClientName":        name,
		"GenerateSecret":    o.GenerateSecret,
		"ExplicitAuthFlows": []string{"ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"},
	}
	if len(o.CallbackURLs) > 0 {
		in["CallbackURLs"] = o.CallbackURLs
	}
	if len(o.LogoutURLs) > 0 {
		in["LogoutURLs"] = o.LogoutURLs
	}
	if len(o.AllowedOAuthFlows) > 0 {
		in["AllowedOAuthFlows"] = o.AllowedOAuthFlows
		in["AllowedOAuthFlowsUserPoolClient"] = true
	}
	if len(o.OAuthScopes) > 0 {
		in["AllowedOAuthScopes"] = o.OAuthScopes
	}
	var out struct{ UserPoolClient AppClient }
	err := c.call(ctx, "CreateUserPoolClient", in, &out)
	return out.UserPoolClient, err
}

// ListUserPoolClients lists a pool's app clients.
func (c *Client) ListUserPoolClients(ctx context.Context, poolID string) ([]AppClient, error) {
	var out struct{ UserPoolClients []AppClient }
	err := c.call(ctx, "ListUserPoolClients", map[string]any{"UserPoolId": poolID, "MaxResults": 60}, &out)
	return out.UserPoolClients, err
}

// DescribeUserPoolClient returns an app client with its secret.
func (c *Client) DescribeUserPoolClient(ctx context.Context, poolID, clientID string) (AppClient, error) {
	var out struct{ UserPoolClient AppClient }
	err := c.call(ctx, "DescribeUserPoolClient", map[string]any{"UserPoolId": poolID, "ClientId": clientID}, &out)
	return out.UserPoolClient, err
}

// User is the part of a user description the tests use.
type User struct {
	Username   string
	Sub        string
	Attributes map[string]string
}

type attr struct{ Name, Value string }

func toUser(username string, attrs []attr) User {
	u := User{Username: username, Attributes: map[string]string{}}
	for _, a := range attrs {
		u.Attributes[a.Name] = a.Value
	}
	u.Sub = u.Attributes["sub"]
	return u
}

// AdminCreateUser creates a user without sending a message. The username is
// an email address (cognito-local's default); email and email_verified=true
// are set from it, plus any extra attributes.
func (c *Client) AdminCreateUser(ctx context.Context, poolID, email string, extra map[string]string) (User, error) {
	attrs := []attr{{"email", email}, {"email_verified", "true"}}
	for k, v := range extra {
		attrs = append(attrs, attr{k, v})
	}
	var out struct {
		User struct {
			Username   string
			Attributes []attr
		}
	}
	err := c.call(ctx, "AdminCreateUser", map[string]any{
		"UserPoolId":     poolID,
		"Username":       email,
		"MessageAction":  "SUPPRESS",
		"UserAttributes": attrs,
	}, &out)
	return toUser(out.User.Username, out.User.Attributes), err
}

// AdminGetUser describes a user.
func (c *Client) AdminGetUser(ctx context.Context, poolID, username string) (User, error) {
	var out struct {
		Username       string
		UserAttributes []attr
	}
	err := c.call(ctx, "AdminGetUser", map[string]any{"UserPoolId": poolID, "Username": username}, &out)
	return toUser(out.Username, out.UserAttributes), err
}

// AdminSetUserPassword sets a permanent password.
func (c *Client) AdminSetUserPassword(ctx context.Context, poolID, username, password string) error {
	return c.call(ctx, "AdminSetUserPassword", map[string]any{
		"UserPoolId": poolID, "Username": username, "Password": password, "Permanent": true,
	}, nil)
}

// CreateGroup creates a group in the pool.
func (c *Client) CreateGroup(ctx context.Context, poolID, group string) error {
	return c.call(ctx, "CreateGroup", map[string]any{"UserPoolId": poolID, "GroupName": group}, nil)
}

// AdminAddUserToGroup puts a user in a group.
func (c *Client) AdminAddUserToGroup(ctx context.Context, poolID, username, group string) error {
	return c.call(ctx, "AdminAddUserToGroup", map[string]any{"UserPoolId": poolID, "Username": username, "GroupName": group}, nil)
}

// Tokens is the AuthenticationResult of InitiateAuth.
type Tokens struct {
	AccessToken  string
	IDToken      string `json:"IdToken"`
	RefreshToken string
	ExpiresIn    int
	TokenType    string
}

// InitiateAuth signs a user in with USER_PASSWORD_AUTH.
func (c *Client) InitiateAuth(ctx context.Context, clientID, username, password string) (Tokens, error) {
	var out struct {
		AuthenticationResult *Tokens
		ChallengeName        string
	}
	err := c.call(ctx, "InitiateAuth", map[string]any{
		"ClientId":       clientID,
		"AuthFlow":       "USER_PASSWORD_AUTH",
		"AuthParameters": map[string]string{"USERNAME": username, "PASSWORD": password},
	}, &out)
	if err != nil {
		return Tokens{}, err
	}
	if out.AuthenticationResult == nil {
		return Tokens{}, fmt.Errorf("cognito InitiateAuth: challenge %q instead of tokens", out.ChallengeName)
	}
	return *out.AuthenticationResult, nil
}

// RefreshTokens uses REFRESH_TOKEN_AUTH.
func (c *Client) RefreshTokens(ctx context.Context, clientID, refreshToken string) (Tokens, error) {
	var out struct{ AuthenticationResult *Tokens }
	err := c.call(ctx, "InitiateAuth", map[string]any{
		"ClientId":       clientID,
		"AuthFlow":       "REFRESH_TOKEN_AUTH",
		"AuthParameters": map[string]string{"REFRESH_TOKEN": refreshToken},
	}, &out)
	if err != nil {
		return Tokens{}, err
	}
	if out.AuthenticationResult == nil {
		return Tokens{}, fmt.Errorf("cognito InitiateAuth: no tokens")
	}
	return *out.AuthenticationResult, nil
}
