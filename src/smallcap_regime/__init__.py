"""smallcap-regime: forecast next quarter's small-cap vs large-cap regime of the US stock market."""

__version__ = "0.1.0"
