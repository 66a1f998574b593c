"""Parse errors that say where: segment name, its position, field (and component)."""

from __future__ import annotations


class HL7ParseError(ValueError):
    """A message that cannot be read. ``code`` is stable (ledger error code); the text is for
    humans and never contains patient data (only segment names, positions and codes)."""

    def __init__(self, code: str, message: str, *, segment: str | None = None,
                 position: int | None = None, field: int | None = None,
                 component: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.segment = segment
        self.position = position
        self.field = field
        self.component = component

    @property
    def location(self) -> str:
        """'PID-7' or 'OBX[4]-5.1' style location, '' when unknown."""
        if not self.segment:
            return ""
        loc = self.segment
        if self.position is not None:
            loc += f"[{self.position}]"
        if self.field is not None:
            loc += f"-{self.field}"
            if self.component is not None:
                loc += f".{self.component}"
        return loc
