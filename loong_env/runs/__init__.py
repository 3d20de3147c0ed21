"""What every run writes: live metrics, their timing, figures and report, and the crash-safe run folder."""
