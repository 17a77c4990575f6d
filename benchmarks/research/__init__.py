"""Research harness (outside the package): measures model options (``[options]`` overlays) on both windows
through the public API only (``load_experiment``, ``build_dataset``, ``run_backtest``)."""
