package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/berth-dev/berth/internal/registry"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func newLogin(a *app) *cobra.Command {
	var user, password string
	var passwordStdin bool
	c := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Log in to a registry (credentials go to ~/.docker/config.json, like Docker's)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			if passwordStdin {
				if password != "" {
					return fmt.Errorf("--password and --password-stdin are mutually exclusive")
				}
				if user == "" {
					return fmt.Errorf("must provide --username with --password-stdin")
				}
				b, err := io.ReadAll(a.stdin)
				if err != nil {
					return err
				}
				password = strings.TrimRight(string(b), "\r\n")
			}
			in := bufio.NewReader(a.stdin)
			if user == "" {
				fmt.Fprint(a.stdout, "Username: ")
				line, _ := in.ReadString('\n')
				user = strings.TrimSpace(line)
			}
			if password == "" {
				fmt.Fprint(a.stdout, "Password: ")
				if f, ok := a.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
					b, err := term.ReadPassword(int(f.Fd()))
					fmt.Fprintln(a.stdout)
					if err != nil {
						return err
					}
					password = string(b)
				} else {
					line, _ := in.ReadString('\n')
					password = strings.TrimRight(line, "\r\n")
				}
			}
			if user == "" || password == "" {
				return fmt.Errorf("username and password are required")
			}
			e, err := a.engine()
			if err != nil {
				return err
			}
			if err := e.Login(cmd.Context(), server, user, password); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, "Login Succeeded")
			return nil
		},
	}
	c.Flags().StringVarP(&user, "username", "u", "", "username")
	c.Flags().StringVarP(&password, "password", "p", "", "password")
	c.Flags().BoolVar(&passwordStdin, "password-stdin", false, "take the password from stdin")
	return c
}

func newLogout(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			// Client-side, as Docker's CLI: credentials live in our
			// config.json, so neither the engine nor berthd (--host) is
			// needed to forget them.
			if err := registry.New(registry.Options{}).Logout(server); err != nil {
				return err
			}
			if server == "" {
				server = "https://index.docker.io/v1/"
			}
			fmt.Fprintf(a.stdout, "Removing login credentials for %s\n", server)
			return nil
		},
	}
}
