"""Request bodies every function shares."""

import uuid

from pydantic import ConfigDict, Field, model_validator

from .responses import CamelModel


class RequestBody(CamelModel):
    """A request body: a field it does not declare is refused (422 naming it), never ignored.

    Ignoring it silently turns a client's typo (`roles` for `roleIds`) into a request that
    succeeds without doing what was asked.
    """

    model_config = ConfigDict(extra="forbid")


class PartialUpdate(RequestBody):
    """A body of fields to change: what is left out stays; what is sent may not be null."""

    @model_validator(mode="after")
    def _something_to_change(self) -> "PartialUpdate":
        if not self.model_fields_set:
            raise ValueError("nothing to update")
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class IdList(RequestBody):
    """`{ids: [...]}` for bulk operations: 1 to 100 UUIDs."""

    ids: list[uuid.UUID] = Field(min_length=1, max_length=100)
