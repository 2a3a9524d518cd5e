package daemon

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/clawbox/clawbox/internal/config"
	"github.com/clawbox/clawbox/internal/egress"
	"github.com/clawbox/clawbox/internal/store"
	"github.com/clawbox/clawbox/internal/toolexec"
	"github.com/clawbox/clawbox/internal/wasm"
)

// startTools builds the WASM engine and the tool registry over [sandbox].tool_dir.
func startTools(ctx context.Context, cfg *config.Config, db *store.DB, gw *egress.Gateway, log *slog.Logger, onChange func()) (*wasm.Engine, *wasm.Registry, error) {
	eng, err := wasm.NewEngine(ctx, wasm.Config{
		CacheDir:       cfg.Sandbox.CacheDir,
		DefaultTimeout: msDuration(cfg.Sandbox.DefaultTimeoutMS),
		MaxTimeout:     msDuration(cfg.Sandbox.MaxTimeoutMS),
		MaxMemoryMB:    cfg.Sandbox.MaxMemoryMB,
		MaxOutputBytes: cfg.Sandbox.MaxOutputBytes,
		MaxStderrBytes: cfg.Sandbox.MaxStderrBytes,
		MaxHostCalls:   cfg.Sandbox.MaxHostCalls,
		Modules: wasm.ModuleLimits{
			MaxFunctions:      cfg.Sandbox.MaxModuleFunctions,
			MaxFunctionLocals: cfg.Sandbox.MaxFunctionLocals,
			MaxLocals:         cfg.Sandbox.MaxModuleLocals,
			MaxFunctionBytes:  cfg.Sandbox.MaxFunctionBytes,
			MaxCodeBytes:      cfg.Sandbox.MaxCodeBytes,
			MaxDataBytes:      cfg.Sandbox.MaxDataBytes,
			MaxTableElements:  cfg.Sandbox.MaxTableElements,
			MaxImports:        cfg.Sandbox.MaxModuleImports,
			MaxExports:        cfg.Sandbox.MaxModuleExports,
		},
		MaxConcurrentCompiles: cfg.Sandbox.MaxConcurrentCompiles,
		CompileTimeout:        msDuration(cfg.Sandbox.CompileTimeoutMS),
		PoolIdleTimeout:       msDuration(cfg.Sandbox.PoolIdleTimeoutMS),
		HTTP:                  toolexec.HTTP{Gateway: gw},
		Logger:                log,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("sandbox: WASM engine: %w", err)
	}
	reg, err := wasm.NewRegistry(ctx, wasm.RegistryConfig{
		Engine:         eng,
		Dir:            cfg.Sandbox.ToolDir,
		MaxModuleBytes: cfg.Sandbox.MaxModuleBytes,
		Store:          db,
		Watch:          cfg.Sandbox.WatchTools,
		OnChange:       onChange,
		Logger:         log,
	})
	if err != nil {
		eng.Close(context.WithoutCancel(ctx))
		return nil, nil, fmt.Errorf("sandbox.tool_dir: %w", err)
	}
	return eng, reg, nil
}
