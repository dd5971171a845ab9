package caddycognito

import (
	"net/url"

	"github.com/spf13/cobra"
)

// invitationsCommand is `caddy cognito invitations …`, over the same
// operations as the admin API's /cognito/invitations.
func invitationsCommand() *cobra.Command {
	inv := group("invitations", "Invitation links that let a person sign in the first time as a given user")

	create := leaf("create", "Create an invitation and print its link", 0, func(c *cobra.Command, _ []string) cliCall {
		roles, _ := c.Flags().GetStringSlice("role")
		send, _ := c.Flags().GetBool("send")
		return cliCall{method: "POST", path: "/cognito/invitations", body: map[string]any{
			"email": strFlag(c, "email"), "user": strFlag(c, "user"), "roles": roles,
			"expires": strFlag(c, "expires"), "send": send,
		}}
	})
	create.Flags().String("email", "", "The invitee's email address")
	create.Flags().String("user", "", "An existing local user to link (id, username or email); default: a new user")
	create.Flags().StringSlice("role", nil, "Role to grant on acceptance (repeatable)")
	create.Flags().String("expires", "", "How long the link is valid, e.g. 72h (default from the config, 336h)")
	create.Flags().Bool("send", false, "Also email the link (needs invitations { mail { … } })")
	requireFlags(create, "email")

	list := leaf("list", "List invitations, newest first", 0, func(c *cobra.Command, _ []string) cliCall {
		return cliCall{method: "GET", path: "/cognito/invitations", query: flagQuery(c, url.Values{}, map[string]string{"status": "status", "email": "email"})}
	})
	list.Flags().String("status", "", "pending, accepted, revoked, expired or failed")
	list.Flags().String("email", "", "Only invitations for this email")

	resend := leaf("resend <id>", "Make a new link (the old one stops working) and email it", 1, func(c *cobra.Command, args []string) cliCall {
		noSend, _ := c.Flags().GetBool("no-send")
		return cliCall{method: "POST", path: "/cognito/invitations/" + url.PathEscape(args[0]) + "/resend", body: map[string]bool{"send": !noSend}}
	})
	resend.Flags().Bool("no-send", false, "Only print the new link")

	clean := leaf("clean", "Remove expired invitations, and used or revoked ones older than --keep", 0, func(c *cobra.Command, _ []string) cliCall {
		return cliCall{method: "POST", path: "/cognito/invitations/clean", body: map[string]string{"keep": strFlag(c, "keep")}}
	})
	clean.Flags().String("keep", "", "Keep used and revoked invitations this long (default 720h)")

	inv.AddCommand(create, list, resend, clean,
		leaf("show <id>", "Show an invitation", 1, func(_ *cobra.Command, args []string) cliCall {
			return cliCall{method: "GET", path: "/cognito/invitations/" + url.PathEscape(args[0])}
		}),
		leaf("revoke <id>", "Withdraw a pending invitation", 1, func(_ *cobra.Command, args []string) cliCall {
			return cliCall{method: "POST", path: "/cognito/invitations/" + url.PathEscape(args[0]) + "/revoke"}
		}),
	)
	return inv
}

// printInvitation writes an invitation (or a create/resend answer) as
// text; it reports whether m was one.
func printInvitation(w *linePrinter, m map[string]any) bool {
	if link, ok := m["accept_url"]; ok {
		inv, _ := m["invitation"].(map[string]any)
		printInvitation(w, inv)
		w.printf("\tlink\t%v\n", link)
		switch {
		case m["sent"] == true:
			w.printf("\temail\tsent to %v\n", inv["email"])
		case m["send_error"] != nil:
			w.printf("\temail\tNOT sent: %v\n", m["send_error"])
		}
		return true
	}
	if m["status"] == nil || m["expires_at"] == nil {
		return false
	}
	user := "new user"
	if u, _ := m["user_id"].(string); u != "" {
		user = "user " + u
	}
	w.printf("%v\t%v\t%v\t%s\troles: %v\texpires %v\n", m["id"], m["email"], m["status"], user, joinAny(m["roles"]), m["expires_at"])
	return true
}
