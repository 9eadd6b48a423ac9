"""Optional Weights & Biases logging of sweep runs, next to TensorBoard; off unless asked for.

`WandbHook` opens a W&B run around each agent task and follows the run's `metrics.jsonl` (the
same values as its TensorBoard events) from a background thread, sending each new line as one
`wandb.log` at step = frames: live, with no change to the agents. W&B's own `sync_tensorboard`
is not used because it needs the full `tensorboard` package, which tdgen does not otherwise
install. A resumed run re-logs the frames after its checkpoint; only lines beyond the largest
step already sent go to W&B, and the W&B run id is derived from the run directory so a relaunch
continues the same W&B run. For an experiment task the run's summary gets the number of claims
that held. `wandb` is imported only here, only when a sweep enables it (`--wandb-project`);
`WANDB_MODE=offline` or `disabled` work as usual.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import threading
from pathlib import Path
from typing import Any

from tdgen._extras import require


@dataclasses.dataclass
class WandbHook:
    """W&B options of a sweep: project, entity, group (default: the sweep's folder name), mode
    (None: W&B's own default or WANDB_MODE), the local directory of W&B files, and how often
    (seconds) the metrics file is read."""

    project: str
    entity: str | None = None
    group: str | None = None
    mode: str | None = None
    dir: str | None = None
    interval: float = 10.0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sent_step = -1
        self._run = None

    def start(self, task: Any) -> None:
        wandb = require("wandb", "sweep", "W&B logging")
        run_dir = Path(task.run_dir).resolve()
        options: dict[str, Any] = dict(
            project=self.project, entity=self.entity,
            group=self.group or run_dir.parent.name, name=task.name,
            id=run_id(run_dir, task.name), resume="allow", dir=self.dir,
            config={"kind": task.kind, "target": task.target, **dict(task.config)},
            reinit="finish_previous",
        )  # fmt: skip
        if self.mode:
            options["mode"] = self.mode
        self._run = wandb.init(**options)
        self._sent_step = int(getattr(self._run, "starting_step", 0) or 0) - 1
        if task.kind == "agent":
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._follow, args=(run_dir / "metrics.jsonl",), daemon=True
            )
            self._thread.start()

    def _follow(self, path: Path) -> None:
        while not self._stop.wait(self.interval):
            self.send_new_lines(path)

    def send_new_lines(self, path: Path) -> int:
        """Log every line of ``path`` past the last step sent; returns how many were sent."""
        if self._run is None or not path.exists():
            return 0
        sent = 0
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # a line being written
                continue
            step = int(row.pop("step"))
            if step <= self._sent_step:
                continue
            values = {k: v for k, v in row.items()
                      if isinstance(v, int | float) and math.isfinite(v)}  # fmt: skip
            self._run.log(values, step=step)
            self._sent_step, sent = step, sent + 1
        return sent

    def finish(self, task: Any) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        if self._run is None:
            return
        run_dir = Path(task.run_dir)
        if task.kind == "agent":
            self.send_new_lines(run_dir / "metrics.jsonl")
        else:
            result = run_dir / task.target / "result.json"
            if result.exists():
                claims = json.loads(result.read_text())["claims"]
                self._run.summary["claims_held"] = sum(c["holds"] for c in claims)
                self._run.summary["claims"] = len(claims)
        self._run.finish()
        self._run = None

    def options(self) -> dict[str, Any]:
        """The constructor arguments, to rebuild the hook in a worker process."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def run_id(run_dir: Path, name: str) -> str:
    """A W&B run id stable across relaunches: the run name's characters W&B allows, plus a hash
    of the absolute run directory so two sweeps' runs of one name stay apart."""
    digest = hashlib.sha256(str(Path(run_dir).resolve()).encode()).hexdigest()[:10]
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:48]
    return f"{safe}-{digest}"


__all__ = ["WandbHook", "run_id"]
