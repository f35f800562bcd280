"""The load report: what happened to every row of a file (accepted, repaired and how, refused and why)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class LoadReport:
    """Per-row outcome of one load; ``fatal`` is set when the whole file is refused."""

    source: str
    layer: str = ""
    encoding: str = ""
    rows: int = 0
    loaded: int = 0
    repaired: list[dict] = field(default_factory=list)
    refused: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fatal: str = ""
    dry_run: bool = False

    def repair(self, line: int, how: str) -> None:
        self.repaired.append({"line": line, "repair": how})

    def refuse(self, line: int, reason: str) -> None:
        self.refused.append({"line": line, "reason": reason})

    @property
    def ok(self) -> bool:
        return not self.fatal

    def summary(self, limit: int = 20) -> str:
        """A few lines for the terminal: counts, notes, then the first problems by line."""
        head = (f"{self.layer or 'layer'}: {self.source}" + (f" ({self.encoding})" if self.encoding else "")
                + (" [dry run: nothing stored]" if self.dry_run else ""))
        if self.fatal:
            return f"{head}\n  refused as a whole: {self.fatal}"
        lines = [head, f"  {self.rows} rows: {self.loaded} accepted ({len(self.repaired)} repairs), "
                       f"{len(self.refused)} refused"]
        lines += [f"  note: {n}" for n in self.notes]
        problems = sorted(self.refused + self.repaired, key=lambda p: p.get("line", 0))
        for p in problems[:limit]:
            what = f"refused: {p['reason']}" if "reason" in p else f"repaired: {p['repair']}"
            lines.append(f"  line {p.get('line', '?')}: {what}")
        if len(problems) > limit:
            lines.append(f"  ... {len(problems) - limit} more in the report file")
        return "\n".join(lines)

    def write(self, path: Path) -> Path:
        """The full report as JSON (every row's problem, every note)."""
        path.write_text(json.dumps(asdict(self), ensure_ascii=False, indent=1))
        return path
