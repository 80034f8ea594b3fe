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
	root := &cobra.Command{
		Use:           "dml",
		Short:         "dml — the Definitive Media Library",
		Long:          "dml keeps the definitive, authorised versions of an organisation's software packages.\n\nThe server flags and --server, --token, --output can also be set as environment variables\nDML_<FLAG> (e.g. DML_SERVER, DML_TOKEN, DML_DATA_DIR) or as a key in the config file (--config, default $XDG_CONFIG_HOME/dml/config.yaml).\nFlags win over the environment, which wins over the file.",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return applyEnvAndConfig(cmd)
		},
	}
	root.PersistentFlags().String("config", "", "config file (YAML: flag names as keys; env DML_CONFIG)")
	root.AddCommand(newServeCmd())
	addClientCommands(root)
	return root
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
