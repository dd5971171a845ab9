package caddycognito

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/user"
	"strings"
	"text/tabwriter"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddy-cognito/caddy-cognito/internal/adminapi"
	"github.com/caddy-cognito/caddy-cognito/userstore"
)

// Exit codes of `caddy cognito`, so that scripts can tell outcomes apart.
const (
	exitOK          = 0
	exitFailure     = 1 // anything else
	exitUsage       = 2 // bad flags or arguments
	exitNotFound    = 3
	exitConflict    = 4
	exitUnavailable = 5 // the store cannot be opened or answer
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "cognito",
		Usage: "users|service-accounts|invitations|audit <verb> [--config <file> [--adapter <name>] | --db <path>] [--json]",
		Short: "Manages caddy-cognito's local users, roles, service accounts and invitations",
		Long: `
Manages the identity store of caddy-cognito: local users, the roles they
hold, the Cognito identities linked to them, service accounts for
client-credentials tokens, and invitations (links that let a person sign
in the first time as a given user; creating them needs the config's
invitations block, so use --config rather than --db).

The store is found from the same config Caddy runs (--config, --adapter;
the Caddyfile in the current directory by default), or named with --db.
Changes take effect on a running server at its next request. A running
server offers the same operations on its admin API under /cognito/.

Exit codes: 0 done, 2 usage, 3 not found, 4 conflict, 5 store unavailable,
1 anything else.`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.PersistentFlags().StringP("config", "c", "", "Caddy config file that names the store and pools")
			cmd.PersistentFlags().StringP("adapter", "a", "", "Name of the config adapter")
			cmd.PersistentFlags().String("db", "", "Path of the SQLite identity store (instead of --config)")
			cmd.PersistentFlags().Bool("json", false, "Print JSON instead of text")
			cmd.AddCommand(usersCommand(), serviceAccountsCommand(), invitationsCommand(), auditCommand())
			cmd.RunE = groupRunE
			// An unknown or malformed flag is a usage error (exit 2) too;
			// cobra would otherwise end with a plain failure (1).
			cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
				return usageError(c, err)
			})
		},
	})
}

func usersCommand() *cobra.Command {
	users := group("users", "Local users and their roles")

	list := leaf("list", "List users", 0, func(c *cobra.Command, _ []string) cliCall {
		q := flagQuery(c, url.Values{}, map[string]string{"q": "query", "role": "role", "active": "active"})
		return cliCall{method: "GET", path: "/cognito/users", query: q}
	})
	list.Flags().String("query", "", "Substring of username or email")
	list.Flags().String("role", "", "Only users holding this role")
	list.Flags().String("active", "", "true or false")

	add := leaf("add", "Create a user", 0, func(c *cobra.Command, _ []string) cliCall {
		roles, _ := c.Flags().GetStringSlice("role")
		disabled, _ := c.Flags().GetBool("disabled")
		return cliCall{method: "POST", path: "/cognito/users", body: adminapi.UserRequest{
			Username: strFlag(c, "username"), Email: strFlag(c, "email"),
			GivenName: strFlag(c, "given-name"), FamilyName: strFlag(c, "family-name"),
			Roles: roles, Disabled: disabled,
		}}
	})
	add.Flags().String("username", "", "Unique username (required)")
	add.Flags().String("email", "", "Email address")
	add.Flags().String("given-name", "", "Given name")
	add.Flags().String("family-name", "", "Family name")
	add.Flags().StringSlice("role", nil, "Role to grant (repeatable)")
	add.Flags().Bool("disabled", false, "Create the user disabled")
	requireFlags(add, "username")

	byRef := func(verb string) func(*cobra.Command, []string) cliCall {
		return func(_ *cobra.Command, args []string) cliCall {
			p := "/cognito/users/" + url.PathEscape(args[0])
			if verb != "" {
				return cliCall{method: "POST", path: p + "/" + verb}
			}
			return cliCall{method: "GET", path: p}
		}
	}
	roles := func(method string) func(*cobra.Command, []string) cliCall {
		return func(_ *cobra.Command, args []string) cliCall {
			return cliCall{method: method, path: "/cognito/users/" + url.PathEscape(args[0]) + "/roles",
				body: map[string][]string{"roles": args[1:]}}
		}
	}
	link := leaf("link <user>", "Link a Cognito identity (issuer + sub) to a user", 1, func(c *cobra.Command, args []string) cliCall {
		return cliCall{method: "POST", path: "/cognito/users/" + url.PathEscape(args[0]) + "/identities",
			body: map[string]string{"pool": strFlag(c, "pool"), "issuer": strFlag(c, "issuer"), "sub": strFlag(c, "sub"), "provider": strFlag(c, "provider")}}
	})
	link.Flags().String("sub", "", "The identity's sub (required)")
	link.Flags().String("pool", "", "Pool whose issuer the identity belongs to")
	link.Flags().String("issuer", "", "Issuer, instead of --pool")
	link.Flags().String("provider", "", "Federated provider name, if any")
	requireFlags(link, "sub")

	users.AddCommand(list, add, link,
		leaf("show <user>", "Show a user (by id, username or email)", 1, byRef("")),
		leaf("disable <user>", "Disable a user: refused from the next request on", 1, byRef("disable")),
		leaf("enable <user>", "Enable a user", 1, byRef("enable")),
		leaf("grant <user> <role>...", "Grant roles", -2, roles("POST")),
		leaf("revoke <user> <role>...", "Revoke roles", -2, roles("DELETE")),
		leaf("sessions <user>", "List the user's browser sessions", 1, func(_ *cobra.Command, args []string) cliCall {
			return cliCall{method: "GET", path: "/cognito/users/" + url.PathEscape(args[0]) + "/sessions"}
		}),
		leaf("sign-out <user>", "End every browser session of the user", 1, func(_ *cobra.Command, args []string) cliCall {
			return cliCall{method: "DELETE", path: "/cognito/users/" + url.PathEscape(args[0]) + "/sessions"}
		}),
	)
	return users
}

func auditCommand() *cobra.Command {
	audit := leaf("audit", "Show the audit log, newest first", 0, func(c *cobra.Command, _ []string) cliCall {
		return cliCall{method: "GET", path: "/cognito/audit", query: flagQuery(c, url.Values{}, map[string]string{"target": "target", "limit": "limit"})}
	})
	audit.Flags().String("target", "", "Only entries about this user id, invitation id…")
	audit.Flags().String("limit", "", "How many entries (default 100, at most 1000)")
	return audit
}

func serviceAccountsCommand() *cobra.Command {
	sa := group("service-accounts", "Local users for client-credentials tokens (sub = app client id)")
	add := leaf("add", "Map an app client to a (new or existing) local user", 0, func(c *cobra.Command, _ []string) cliCall {
		roles, _ := c.Flags().GetStringSlice("role")
		return cliCall{method: "POST", path: "/cognito/service-accounts", body: map[string]any{
			"pool": strFlag(c, "pool"), "issuer": strFlag(c, "issuer"), "client_id": strFlag(c, "client-id"),
			"username": strFlag(c, "username"), "user_id": strFlag(c, "user-id"), "roles": roles,
		}}
	})
	add.Flags().String("client-id", "", "The app client id (required)")
	add.Flags().String("pool", "", "Pool of the app client")
	add.Flags().String("issuer", "", "Issuer, instead of --pool")
	add.Flags().String("username", "", "Username of the user to create (default service:<client id>)")
	add.Flags().String("user-id", "", "Map to this existing user instead")
	add.Flags().StringSlice("role", nil, "Role to grant the new user (repeatable)")
	requireFlags(add, "client-id")

	remove := leaf("remove", "Remove a service account mapping", 0, func(c *cobra.Command, _ []string) cliCall {
		q := flagQuery(c, url.Values{"client_id": {strFlag(c, "client-id")}}, map[string]string{"pool": "pool", "issuer": "issuer"})
		return cliCall{method: "DELETE", path: "/cognito/service-accounts", query: q}
	})
	remove.Flags().String("client-id", "", "The app client id (required)")
	remove.Flags().String("pool", "", "Pool of the app client")
	remove.Flags().String("issuer", "", "Issuer, instead of --pool")
	requireFlags(remove, "client-id")

	sa.AddCommand(add, remove, leaf("list", "List service accounts", 0, func(*cobra.Command, []string) cliCall {
		return cliCall{method: "GET", path: "/cognito/service-accounts"}
	}))
	return sa
}

// cliCall is one admin operation as the CLI asks for it.
type cliCall struct {
	method, path string
	query        url.Values
	body         any
}

// flagQuery adds to q each query parameter whose flag (params: parameter →
// flag name) was given a value.
func flagQuery(c *cobra.Command, q url.Values, params map[string]string) url.Values {
	for param, f := range params {
		if v := strFlag(c, f); v != "" {
			q.Set(param, v)
		}
	}
	return q
}

func strFlag(c *cobra.Command, name string) string { v, _ := c.Flags().GetString(name); return v }

// group builds a command whose verbs are its subcommands. Without a verb,
// or with one it does not know, it is a usage error (exit 2) with the
// help on stderr; cobra alone would print the help and exit 0, and a
// script would take a typo for success.
func group(use, short string) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: cobra.ArbitraryArgs, RunE: groupRunE}
}

func groupRunE(c *cobra.Command, args []string) error {
	c.SetOut(c.ErrOrStderr())
	_ = c.Usage() // the usage goes to stderr; its write error would change nothing
	if len(args) == 0 {
		return usageError(c, fmt.Errorf("%s needs a command", c.CommandPath()))
	}
	return usageError(c, fmt.Errorf("unknown command %q for %s", args[0], c.CommandPath()))
}

// leaf builds a verb: nargs ≥ 0 is an exact count, -n means at least n.
// Arguments are checked here rather than by cobra so that a usage error
// exits with exitUsage.
func leaf(use, short string, nargs int, build func(*cobra.Command, []string) cliCall) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short,
		RunE: func(c *cobra.Command, args []string) error {
			return caddycmd.WrapCommandFuncForCobra(func(caddycmd.Flags) (int, error) {
				if (nargs >= 0 && len(args) != nargs) || (nargs < 0 && len(args) < -nargs) {
					return exitUsage, fmt.Errorf("usage: %s", c.UseLine())
				}
				for _, name := range strings.Fields(c.Annotations[requiredAnnotation]) {
					if !c.Flags().Changed(name) {
						return exitUsage, fmt.Errorf("--%s is required; usage: %s", name, c.UseLine())
					}
				}
				return runCLI(c, build(c, args))
			})(c, args)
		},
	}
}

// requiredAnnotation lists a verb's required flags. They are checked in
// leaf rather than by cobra, whose own check would exit 1, not exitUsage.
const requiredAnnotation = "cognito_required_flags"

func requireFlags(c *cobra.Command, names ...string) {
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[requiredAnnotation] = strings.Join(names, " ")
	for _, n := range names {
		if f := c.Flags().Lookup(n); f != nil {
			f.Usage += " (required)"
		}
	}
}

// usageError ends the command with exitUsage.
func usageError(c *cobra.Command, err error) error {
	return caddycmd.WrapCommandFuncForCobra(func(caddycmd.Flags) (int, error) {
		return exitUsage, err
	})(c, nil)
}

// runCLI opens the store the flags name and runs call through the admin
// operations, printing the answer.
func runCLI(c *cobra.Command, call cliCall) (int, error) {
	ops, closeOps, err := cliOperations(c)
	if err != nil {
		return exitUsage, err
	}
	defer closeOps()

	var body io.Reader = http.NoBody
	if call.body != nil {
		b, _ := json.Marshal(call.body)
		body = bytes.NewReader(b)
	}
	target := call.path
	if len(call.query) > 0 {
		target += "?" + call.query.Encode()
	}
	req, err := http.NewRequestWithContext(c.Context(), call.method, target, body)
	if err != nil {
		return exitUsage, err
	}
	req.Header.Set("Content-Type", "application/json")
	_, result, err := ops.Do(req, cliActor())
	if err != nil {
		return exitCodeFor(adminapi.StatusFor(err)), err
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(result); err != nil {
		return exitFailure, err
	}
	asJSON, _ := c.Flags().GetBool("json")
	return exitOK, printResult(c.OutOrStdout(), out.Bytes(), asJSON)
}

func exitCodeFor(status int) int {
	switch status {
	case http.StatusNotFound:
		return exitNotFound
	case http.StatusConflict:
		return exitConflict
	case http.StatusBadRequest:
		return exitUsage
	case http.StatusServiceUnavailable:
		return exitUnavailable
	default:
		return exitFailure
	}
}

func cliActor() string {
	if u, err := user.Current(); err == nil {
		return "cli:" + u.Username
	}
	return "cli"
}

// cliOperations finds the store (and the pools, to resolve pool names to
// issuers) from --db or from the Caddy config.
func cliOperations(c *cobra.Command) (*adminapi.API, func(), error) {
	dbPath := strFlag(c, "db")
	cfg := StoreConfig{Path: dbPath}
	issuers := map[string]string{}
	var invites *inviteSetup
	if dbPath == "" {
		raw, _, _, err := caddycmd.LoadConfig(strFlag(c, "config"), strFlag(c, "adapter"))
		if err != nil {
			return nil, nil, fmt.Errorf("loading config (or name the store with --db): %w", err)
		}
		var full struct {
			Apps struct {
				Cognito *App `json:"cognito"`
			} `json:"apps"`
		}
		if err := json.Unmarshal(raw, &full); err != nil || full.Apps.Cognito == nil {
			return nil, nil, fmt.Errorf("the config has no cognito app (or name the store with --db)")
		}
		app := full.Apps.Cognito
		cfg = app.Store.resolved()
		repl := caddy.NewReplacer()
		expand := func(s string) string { return repl.ReplaceKnown(s, "") }
		for name, p := range app.Pools {
			if iss, err := p.resolveIssuers(expand); err == nil {
				issuers[name] = iss[0]
			}
		}
		if app.Invitations != nil {
			if invites, err = newInviteSetup(*app.Invitations, expand); err != nil {
				return nil, nil, err
			}
		}
	}
	cfg = (&cfg).resolved()
	var store *userstore.Store
	ops := newAdminOperations(issuers, func() (*userstore.Store, error) {
		if store == nil {
			s, err := openStore(cfg)
			if err != nil {
				return nil, err
			}
			store = s
		}
		return store, nil
	}, invites, nil)
	return ops, func() {
		if store != nil {
			closeStore(cfg)
		}
	}, nil
}

// printResult writes the answer as JSON, or as text for people.
func printResult(w io.Writer, body []byte, asJSON bool) error {
	if asJSON {
		_, err := w.Write(body)
		return err
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := &linePrinter{w: tw}
	rows, isList := v.([]any)
	if !isList {
		rows = []any{v}
	}
	if len(rows) == 0 {
		p.printf("(none)\n")
	}
	for _, row := range rows {
		m, _ := row.(map[string]any)
		switch {
		case printInvitation(p, m):
		case m["removed"] != nil:
			p.printf("removed %v\n", m["removed"])
		case m["ended"] != nil:
			p.printf("ended %v sessions\n", m["ended"])
		case m["action"] != nil && m["at"] != nil:
			p.printf("%v\t%v\t%v\t%v\t%v\n", m["at"], m["actor"], m["action"], m["target"], m["detail"])
		case m["idle_expires_at"] != nil:
			p.printf("since %v\tlast seen %v\t%v\t%v\n", m["created_at"], m["last_seen_at"], m["remote_ip"], m["user_agent"])
		case m["client_id"] != nil:
			p.printf("%v\t%v\tuser %v (%v)\t%v\n", m["client_id"], m["issuer"], m["username"], m["user_id"], activeWord(m["active"]))
		case m["username"] != nil:
			// roles: all of them; then how each was granted, when the
			// provider granted any (local: by hand or invitation)
			sources := ""
			if l, _ := m["provider_roles"].([]any); len(l) > 0 {
				sources = "\tlocal: " + joinAny(m["local_roles"]) + "\tprovider: " + joinAny(l)
			}
			p.printf("%v\t%v\t%v\t%v\troles: %v%s\n", m["id"], m["username"], m["email"], activeWord(m["active"]), joinAny(m["roles"]), sources)
			if ids, ok := m["identities"].([]any); ok {
				for _, id := range ids {
					im, _ := id.(map[string]any)
					p.printf("\tidentity\t%v\t%v\t%v\n", im["issuer"], im["sub"], im["provider"])
				}
			}
		default:
			b, _ := json.Marshal(m)
			p.printf("%s\n", b)
		}
	}
	if p.err != nil {
		return p.err
	}
	return tw.Flush()
}

// linePrinter writes formatted text and keeps the first write error, so
// that a printer of many lines checks once.
type linePrinter struct {
	w   io.Writer
	err error
}

func (p *linePrinter) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func activeWord(v any) string {
	if b, _ := v.(bool); b {
		return "active"
	}
	return "disabled"
}

func joinAny(v any) string {
	l, _ := v.([]any)
	parts := make([]string, len(l))
	for i, x := range l {
		parts[i] = fmt.Sprint(x)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}
