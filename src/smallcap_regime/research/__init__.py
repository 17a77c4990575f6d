"""Research variants of the models (issue 13) and the harness that measures them on both windows.

``options`` holds the ``[research]`` table of an experiment (every switch off by default), ``variants`` the
fit/predict/post-processing hooks the backtest calls, ``harness`` the runner behind ``benchmarks/research.py``.
Nothing is imported here, so the experiment loader can import ``options`` without pulling in the backtest.
"""
