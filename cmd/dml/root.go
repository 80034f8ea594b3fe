package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

func newRootCmd() *cobra.Command {
	var (
		app         cli
		showVersion bool
	)
	root := &cobra.Command{
		Use:   "dml",
		Short: "dml — the Definitive Media Library",
		Long: `dml keeps the definitive, authorised versions of an organisation's software packages.

The server flags and --server, --token, --output can also be set as environment variables
DML_<FLAG> (e.g. DML_SERVER, DML_TOKEN, DML_DATA_DIR) or as a key in the config file (--config,
default $XDG_CONFIG_HOME/dml/config.yaml). Flags win over the environment, which wins over the file.

Every command that prints takes --output table (the default, for people) or --output json (one
JSON document, or one JSON object per line for fsck, gc and audit log). Times are RFC 3339, in UTC.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnvAndConfig(cmd); err != nil {
				return err
			}
			if cmd.Annotations[noOutputAnnotation] != "" {
				return nil
			}
			return app.validateOutput()
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if showVersion {
				return printVersion(cmd.OutOrStdout(), &app)
			}
			return cmd.Help()
		},
	}
	root.PersistentFlags().String("config", "", "config file (YAML: flag names as keys; env DML_CONFIG)")
	app.register(root)
	root.Flags().BoolVar(&showVersion, "version", false, "print the version and commit of this build (as dml version does)")
	root.AddCommand(newServeCmd(), newVersionCmd(&app), newAdminCmd(&app))
	root.AddCommand(newHealthcheckCmd(&app))
	addClientCommands(root, &app)
	root.AddCommand(newBenchCmd(&app))
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	// serve logs, help and completion print text for people and shells.
	for _, c := range root.Commands() {
		if n := c.Name(); n == "serve" || n == "help" || n == "completion" {
			markNoOutput(c)
		}
	}
	requireKnownSubcommands(root)
	return root
}

// noOutputAnnotation marks a command that prints no records (serve logs),
// so --output, and DML_OUTPUT in its environment, do not concern it.
const noOutputAnnotation = "dml.no-output"

func markNoOutput(cmd *cobra.Command) {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[noOutputAnnotation] = "true"
	for _, sub := range cmd.Commands() {
		markNoOutput(sub)
	}
}

// requireKnownSubcommands makes every command that has subcommands
// (root included) refuse an unknown one: cobra only checks the root's,
// and a group such as `dml release` would print its help and exit 0 for
// `dml release aprove`. A group given no subcommand prints its help.
func requireKnownSubcommands(cmd *cobra.Command) {
	if !cmd.HasSubCommands() {
		return
	}
	cmd.Args = knownSubcommand
	if cmd.Run == nil && cmd.RunE == nil {
		cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	}
	for _, sub := range cmd.Commands() {
		requireKnownSubcommands(sub)
	}
}

// knownSubcommand is the Args of a command group: any argument is an
// unknown subcommand, reported with cobra's suggestions.
func knownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
	}
	return fmt.Errorf("%s\n\nRun '%s --help' for usage", msg, cmd.CommandPath())
}

// envAnnotation marks the flags that DML_<FLAG> and the config file may
// set. Only marked flags are filled: a stray DML_ENV=prod in a shell must
// not silently add an environment to every `token create`.
const envAnnotation = "dml.env"

// fromEnv marks flags as settable from the environment and config file.
func fromEnv(fs *pflag.FlagSet, names ...string) {
	for _, n := range names {
		if err := fs.SetAnnotation(n, envAnnotation, []string{"true"}); err != nil {
			panic(fmt.Sprintf("fromEnv: %v", err)) // a programming error: the flag does not exist
		}
	}
}

// applyEnvAndConfig fills every marked flag the user did not set from
// DML_<FLAG>, then from the config file.
func applyEnvAndConfig(cmd *cobra.Command) error {
	file, err := loadConfigFile(cmd)
	if err != nil {
		return err
	}
	var firstErr error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed || firstErr != nil || f.Annotations[envAnnotation] == nil {
			return
		}
		key := "DML_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := os.LookupEnv(key)
		source := key
		if !ok {
			v, ok = file[f.Name]
			source = "config file key " + f.Name
		}
		if !ok {
			return
		}
		if err := f.Value.Set(v); err != nil {
			firstErr = fmt.Errorf("%s: %w", source, err)
			return
		}
		f.Changed = true
	})
	return firstErr
}

func loadConfigFile(cmd *cobra.Command) (map[string]string, error) {
	path, _ := cmd.Flags().GetString("config")
	explicit := path != ""
	if !explicit {
		if v := os.Getenv("DML_CONFIG"); v != "" {
			path, explicit = v, true
		} else if dir, err := os.UserConfigDir(); err == nil {
			path = filepath.Join(dir, "dml", "config.yaml")
		}
	}
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) && !explicit {
			return nil, nil
		}
		return nil, fmt.Errorf("config file: %w", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		switch t := v.(type) {
		case []any:
			parts := make([]string, len(t))
			for i, p := range t {
				parts[i] = fmt.Sprint(p)
			}
			out[k] = strings.Join(parts, ",")
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	return out, nil
}
