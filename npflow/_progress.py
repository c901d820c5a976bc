"""A one-line progress display for long loops, shown only on a terminal."""
import sys
import time


def _clock(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """Rewrites one status line: ``step 1200/8000  loss 0.8123  412 steps/s  left 0:00:16``.

    Parameters
    ----------
    total : int
        The step count at which the loop ends.
    start : int
        The step the loop starts from (resumed runs start later).
    enabled : bool, optional
        Show the line; by default only when ``stream`` is a terminal.
    stream : file
        Where to write (standard error by default, so piped output stays clean).
    """

    def __init__(self, total, start=0, enabled=None, stream=None, label="step"):
        self.stream = sys.stderr if stream is None else stream
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total, self.start, self.label = total, start, label
        self.t_start = self._last = time.perf_counter()
        self._shown = False

    def update(self, step, **values):
        """Show ``step`` and the named values (at most every 0.2 s)."""
        now = time.perf_counter()
        if not self.enabled or (now - self._last < 0.2 and step < self.total):
            return
        self._last = now
        rate = (step - self.start) / max(now - self.t_start, 1e-9)
        left = (self.total - step) / rate if rate > 0 else 0.0
        shown = "  ".join(f"{k} {v:.4g}" for k, v in values.items())
        self.stream.write(f"\r{self.label} {step}/{self.total}  {shown}  {rate:.0f} {self.label}s/s"
                          f"  left {_clock(left)} ")
        self.stream.flush()
        self._shown = True

    def close(self):
        """End the status line."""
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
