"""Progress of long steps, written into the step's log (``results/logs/<rule>/<name>.log``), not the console.

A Snakemake ``script:`` job's stderr goes to the console the whole run shares, so a bar there is lost for the job
that drew it. Here progress goes through the ``logging`` handlers that :func:`tdann.provenance.step` opens on the
rule's log file: with ``run.progress: true`` a tqdm bar (refreshed at most every ``interval`` seconds, one line per
refresh), otherwise a line at every tenth of the work (``milestones``).
"""

from __future__ import annotations

import io
import logging
import time

from tqdm.auto import tqdm

log = logging.getLogger("tdann.progress")
INTERVAL_S = 30.0  # a log file is read later, not watched: one refresh per half minute is enough
_enabled = False


def configure(enabled: bool) -> None:
    """Set whether bars are drawn where a caller does not say (``run.progress``; set by provenance.step)."""
    global _enabled
    _enabled = bool(enabled)


class _LogStream(io.TextIOBase):
    """A text stream that hands each line tqdm writes to the progress logger (carriage returns dropped)."""

    def write(self, text: str) -> int:
        line = text.replace("\r", "").strip()
        if line:
            log.info(line)
        return len(text)

    def flush(self) -> None:
        pass


class Progress:
    """Counts work done; logs it as a tqdm bar or as milestone lines. Use as a context manager or call close()."""

    def __init__(self, total: int | None, desc: str, unit: str = "it", enabled: bool | None = None,
                 milestones: int = 10, interval: float = INTERVAL_S, initial: int = 0):
        self.total, self.desc, self.unit, self.n, self._initial = total, desc, unit, initial, initial
        self.milestones = milestones if total else 0
        self._next = 1
        self._t0 = time.perf_counter()
        self._postfix: dict[str, str] = {}
        enabled = _enabled if enabled is None else enabled
        self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=_LogStream(), ascii=True,
                         ncols=100, mininterval=interval, maxinterval=max(interval, 1.0)) if enabled else None
        if self.milestones and total:
            while self._next <= self.milestones and self._next * total <= initial * self.milestones:
                self._next += 1  # a resumed job does not repeat milestones it passed

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
            return
        total = self.total or 0  # milestones are 0 without a total
        if self.milestones and self._next <= self.milestones and self.n * self.milestones >= self._next * total:
            while self._next <= self.milestones and self.n * self.milestones >= self._next * total:
                self._next += 1  # one line however many milestones one update passes
            self._log_line()

    def set_postfix(self, **values) -> None:
        self._postfix = {k: str(v) for k, v in values.items()}
        if self._bar is not None:
            self._bar.set_postfix(values, refresh=False)

    def _log_line(self) -> None:
        elapsed = time.perf_counter() - self._t0
        rate = (self.n - self._initial) / elapsed if elapsed > 0 else float("nan")
        total = self.total or 0  # lines are logged only where there is a total
        eta = (total - self.n) / rate if rate > 0 else float("nan")  # nan > 0 is False
        extra = "".join(f", {k} {v}" for k, v in self._postfix.items())
        log.info("%s: %d/%d %s (%d%%), %.1f s, %.3g %s/s, eta %.0f s%s", self.desc, self.n, self.total, self.unit,
                 round(100 * self.n / total), elapsed, rate, self.unit, eta, extra)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
