"""Request bodies every function shares."""

import uuid

from pydantic import Field, model_validator

from .responses import CamelModel


class PartialUpdate(CamelModel):
    """A body of fields to change: what is left out stays; what is sent may not be null."""

    @model_validator(mode="after")
    def _something_to_change(self) -> "PartialUpdate":
        if not self.model_fields_set:
            raise ValueError("nothing to update")
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class IdList(CamelModel):
    """`{ids: [...]}` for bulk operations: 1 to 100 UUIDs."""

    ids: list[uuid.UUID] = Field(min_length=1, max_length=100)
