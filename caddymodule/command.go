package emailotp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "email-otp",
		Usage: "invite|list|get|revoke|reset|delete|why|passkeys|delete-passkey --tenant <id> [--email <address>] …",
		Short: "Manages the guests of email_otp through a running Caddy's admin API",
		Long: `
Manages the guest directory of the email_otp handler through the admin API of
a running Caddy (the address is taken from --address, or from the config given
with --config, or is localhost:2019).

  caddy email-otp invite --tenant docs.example.com --email bob@partner.com \
      --url https://docs.example.com/reports/q3.pdf --invited-by alice@example.com --expires 7d
  caddy email-otp list   --tenant docs.example.com
  caddy email-otp revoke --tenant docs.example.com --email bob@partner.com
  caddy email-otp reset  --tenant docs.example.com --email bob@partner.com
  caddy email-otp delete --tenant docs.example.com --email bob@partner.com
  caddy email-otp passkeys --tenant docs.example.com --email bob@partner.com
  caddy email-otp delete-passkey --tenant docs.example.com --email bob@partner.com --id <id>
`,
		CobraFunc: func(cmd *cobra.Command) {
			for _, sub := range guestCommands() {
				cmd.AddCommand(sub)
			}
		},
	})
}

func guestCommands() []*cobra.Command {
	newSub := func(name, short string, needEmail bool, run func(c *cobra.Command, admin, tenant, email string) error) *cobra.Command {
		c := &cobra.Command{
			Use:   name,
			Short: short,
			Args:  cobra.NoArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				f := c.Flags()
				tenant, _ := f.GetString("tenant")
				email, _ := f.GetString("email")
				if tenant == "" {
					return fmt.Errorf("--tenant is required (a host name, or the tenant segment of path tenants)")
				}
				if needEmail && email == "" {
					return fmt.Errorf("--email is required")
				}
				address, _ := f.GetString("address")
				config, _ := f.GetString("config")
				adapter, _ := f.GetString("adapter")
				admin, err := caddycmd.DetermineAdminAPIAddress(address, nil, config, adapter)
				if err != nil {
					return fmt.Errorf("finding the admin API: %v", err)
				}
				return run(c, admin, tenant, email)
			},
		}
		c.Flags().String("tenant", "", "the tenant id (required)")
		if needEmail {
			c.Flags().String("email", "", "the guest's address (required)")
		}
		c.Flags().String("address", "", "the admin API's address, e.g. localhost:2019")
		c.Flags().StringP("config", "c", "", "a config file to read the admin address from")
		c.Flags().StringP("adapter", "a", "", "the config file's adapter")
		return c
	}
	change := func(method, suffix string) func(c *cobra.Command, admin, tenant, email string) error {
		return func(c *cobra.Command, admin, tenant, email string) error {
			return adminCall(c.OutOrStdout(), admin, method, guestPath(tenant, email)+suffix, nil)
		}
	}

	invite := newSub("invite", "Invites a guest and mails them a sign-in link", true, func(c *cobra.Command, admin, tenant, email string) error {
		f := c.Flags()
		req := inviteRequest{Email: email}
		req.URL, _ = f.GetString("url")
		req.InvitedBy, _ = f.GetString("invited-by")
		req.ExpiresIn, _ = f.GetString("expires")
		req.Paths, _ = f.GetStringSlice("path")
		req.Language, _ = f.GetString("language")
		if noEmail, _ := f.GetBool("no-email"); noEmail {
			no := false
			req.SendEmail = &no
		}
		body, _ := json.Marshal(req)
		return adminCall(c.OutOrStdout(), admin, http.MethodPost, guestPath(tenant, ""), body)
	})
	invite.Flags().String("url", "", "the link of the shared resource the invitation lands on (required unless --no-email)")
	invite.Flags().String("invited-by", "", "who invites, shown in the email and the directory")
	invite.Flags().String("expires", "", "how long the invitation may be redeemed, e.g. 7d")
	invite.Flags().StringSlice("path", nil, "a path prefix the guest may open (repeatable); default: the whole tenant")
	invite.Flags().Bool("no-email", false, "record the invitation without sending the email")
	invite.Flags().String("language", "", "the invitation email's language, e.g. de (default English)")

	list := newSub("list", "Lists a tenant's guests, a page at a time", false, func(c *cobra.Command, admin, tenant, _ string) error {
		query := url.Values{}
		for flag, param := range listParams {
			if v, _ := c.Flags().GetString(flag); v != "" {
				query.Set(param, v)
			}
		}
		path := guestPath(tenant, "")
		if len(query) > 0 {
			path += "?" + query.Encode()
		}
		return printPage(c, admin, path)
	})
	list.Flags().Bool("json", false, "print JSON")
	list.Flags().String("search", "", "part of the address; @contoso.com for a domain")
	list.Flags().String("status", "", "invited, redeemed or revoked")
	list.Flags().String("source", "", "otp, passkey, oidc (any provider) or oidc:<name>")
	list.Flags().String("signed-in-after", "", "last sign-in after this RFC 3339 time")
	list.Flags().String("signed-in-before", "", "last sign-in before this RFC 3339 time")
	list.Flags().String("sort", "", "address (default) or last_sign_in (newest first)")
	list.Flags().String("after", "", "the cursor the previous page printed")
	list.Flags().String("limit", "", "guests per page (default 50, at most 500)")

	why := newSub("why", "Says why a guest can or can't get in: the deciding rule, the limits holding the address, the mailer's last answers", true, func(c *cobra.Command, admin, tenant, email string) error {
		p := "/email-otp/why/" + url.PathEscape(tenant) + "/" + url.PathEscape(email)
		if path, _ := c.Flags().GetString("path"); path != "" {
			p += "?path=" + url.QueryEscape(path)
		}
		return adminCall(c.OutOrStdout(), admin, http.MethodGet, p, nil)
	})
	why.Flags().String("path", "", "also say whether the guest may open this path, e.g. /reports/q3.pdf")

	passkeys := newSub("passkeys", "Lists a guest's passkeys", true, func(c *cobra.Command, admin, tenant, email string) error {
		return printList(c, admin, guestPath(tenant, email)+"/passkeys", printPasskeys)
	})
	passkeys.Flags().Bool("json", false, "print JSON")

	deletePasskey := newSub("delete-passkey", "Deletes one of a guest's passkeys (its id from the passkeys command)", true, func(c *cobra.Command, admin, tenant, email string) error {
		id, _ := c.Flags().GetString("id")
		if id == "" {
			return fmt.Errorf("--id is required: the passkey's id, as the passkeys command lists it")
		}
		return adminCall(c.OutOrStdout(), admin, http.MethodDelete, guestPath(tenant, email)+"/passkeys/"+url.PathEscape(id), nil)
	})
	deletePasskey.Flags().String("id", "", "the passkey's id (required)")

	return []*cobra.Command{
		invite,
		passkeys,
		deletePasskey,
		list,
		why,
		newSub("get", "Shows one guest", true, change(http.MethodGet, "")),
		newSub("revoke", "Revokes a guest: no sign-in, sessions end at the next request", true, change(http.MethodPost, "/revoke")),
		newSub("reset", "Resets a guest's redemption: sessions end, the next sign-in redeems again", true, change(http.MethodPost, "/reset")),
		newSub("delete", "Deletes a guest: sessions end at the next request", true, change(http.MethodDelete, "")),
	}
}

// printList GETs a list from the admin API and prints it as a table, or as
// the API's JSON with --json.
func printList[T any](c *cobra.Command, admin, path string, table func(io.Writer, []T) error) error {
	var list []T
	if done, err := fetchAnswer(c, admin, path, &list); done || err != nil {
		return err
	}
	return table(c.OutOrStdout(), list)
}

// printPage GETs a page of guests and prints it as a table, with the
// command for the next page, or as the API's JSON with --json.
func printPage(c *cobra.Command, admin, path string) error {
	var page guestPage
	if done, err := fetchAnswer(c, admin, path, &page); done || err != nil {
		return err
	}
	if err := printGuests(c.OutOrStdout(), page.Guests); err != nil {
		return err
	}
	if page.Next != "" {
		fmt.Fprintf(c.OutOrStdout(), "more: add --after %s\n", page.Next)
	}
	return nil
}

// fetchAnswer GETs path from the admin API: with --json it prints the
// answer as it came and reports done; else it decodes it into v.
func fetchAnswer(c *cobra.Command, admin, path string, v any) (done bool, err error) {
	var out bytes.Buffer
	if err := adminCall(&out, admin, http.MethodGet, path, nil); err != nil {
		return false, err
	}
	if asJSON, _ := c.Flags().GetBool("json"); asJSON {
		_, err := io.Copy(c.OutOrStdout(), &out)
		return true, err
	}
	if err := json.Unmarshal(out.Bytes(), v); err != nil {
		return false, fmt.Errorf("the admin API answered something unexpected: %v", err)
	}
	return false, nil
}

func guestPath(tenant, email string) string {
	p := "/email-otp/guests/" + url.PathEscape(tenant)
	if email != "" {
		p += "/" + url.PathEscape(email)
	}
	return p
}

// adminCall sends one request to the admin API and copies the answer to out;
// an error status becomes an error with the API's reason.
func adminCall(out io.Writer, admin, method, path string, body []byte) error {
	var r io.Reader
	headers := http.Header{}
	if body != nil {
		r = bytes.NewReader(body)
		headers.Set("Content-Type", "application/json")
	}
	resp, err := caddycmd.AdminAPIRequest(admin, method, path, headers, r)
	if err != nil {
		return err // AdminAPIRequest already says what the API answered
	}
	defer resp.Body.Close()
	_, err = io.Copy(out, resp.Body)
	return err
}

// day is a time as the tables show it.
func day(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

func printGuests(out io.Writer, guests []guestView) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EMAIL\tSTATUS\tINVITED BY\tINVITED\tLAST SIGN-IN\tPASSKEYS\tPATHS")
	for _, g := range guests {
		by := g.InvitedBy
		if by == "" {
			by = "-"
		}
		paths := strings.Join(g.Paths, ",")
		if paths == "" {
			paths = "all"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", g.Email, g.Status, by, day(g.InvitedAt), day(g.LastSignIn), len(g.Passkeys), paths)
	}
	return tw.Flush()
}

func printPasskeys(out io.Writer, passkeys []passkeyView) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tDEVICE\tCREATED\tLAST USED\tSYNCED")
	for _, p := range passkeys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\n", p.ID, p.Device, day(&p.CreatedAt), day(p.LastUsed), p.Synced)
	}
	return tw.Flush()
}

// listParams are the list command's flags and the admin API's parameters
// they become.
var listParams = map[string]string{
	"search": "q", "status": "status", "source": "source", "signed-in-after": "signed_in_after",
	"signed-in-before": "signed_in_before", "after": "after", "limit": "limit", "sort": "sort",
}
