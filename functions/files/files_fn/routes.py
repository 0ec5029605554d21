"""/api/v1/files routes: presigned uploads and downloads, with the files' metadata."""

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi import Response as HTTPResponse

from multidb.api.app import API_PREFIX, DocumentedRoute
from multidb.api.deps import CurrentPrincipal, Keyword, PageDep, RedisDep
from multidb.api.errors import error_responses
from multidb.api.responses import Created, Page, Response
from multidb.errors import DocumentStoreUnavailable
from multidb.files.lifecycle import StorageQuotaExceeded, TooManyPendingUploads
from multidb.files.storage import ObjectStorageUnavailable

from . import service
from .schemas import PART_URLS, DownloadPublic, FilePublic, PartsPublic, UploadComplete, UploadCreate, UploadPublic

router = APIRouter(prefix=f"{API_PREFIX}/files", tags=["File"], route_class=DocumentedRoute)

FileId = Annotated[str, Path(pattern=r"^[0-9a-f]{24}$", description="The file's id")]
Status = Annotated[Literal["pending", "ready"] | None, Query(description="Only files in this state")]
Cursor = Annotated[
    str | None,
    Query(
        pattern=service.CURSOR,
        description="The `nextCursor` of the page before: the page after it (then `page` is ignored)",
    ),
]

# Every route reads the files' metadata (MongoDB); a route on one file finds it the caller's, or none.
OWNED = (DocumentStoreUnavailable, service.FileNotFound)


@router.get("", responses=error_responses(DocumentStoreUnavailable))
async def list_files(
    principal: CurrentPrincipal, page: PageDep, keyword: Keyword = None, status: Status = None, cursor: Cursor = None
) -> Response[Page[FilePublic]]:
    """List the caller's files (an admin sees everyone's), newest first, filtered by name and state."""
    return Response(data=await service.page(principal, page.page, page.page_size, keyword, status, cursor))


FILE = Created(f"{API_PREFIX}/files/{{file_id}}", id_pointer="/data/file/id")


@router.post(
    "/uploads",
    status_code=201,
    responses={
        **error_responses(
            DocumentStoreUnavailable,
            ObjectStorageUnavailable,
            service.FileTooLarge,
            service.FileTooLargeForOnePut,
            service.TooManyParts,
            TooManyPendingUploads,
            StorageQuotaExceeded,
        ),
        **FILE.responses,
    },
)
async def create_upload(
    principal: CurrentPrincipal, body: UploadCreate, redis: RedisDep, response: HTTPResponse
) -> Response[UploadPublic]:
    """Register a file and get a presigned URL to PUT its bytes to (or one per part), then complete the upload."""
    upload = await service.create_upload(redis, principal, body)
    FILE.locate(response, file_id=upload.file.id)
    return Response(code=201, data=upload)


@router.post(
    "/{file_id}/complete",
    responses=error_responses(
        *OWNED,
        ObjectStorageUnavailable,
        service.PartsIncomplete,
        service.PartsInvalid,
        service.PartsNotExpected,
        service.UploadMissing,
        service.UploadSizeMismatch,
    ),
)
async def complete_upload(
    principal: CurrentPrincipal, file_id: FileId, body: UploadComplete | None = None
) -> Response[FilePublic]:
    """Confirm the upload (in parts: name every part's ETag); the file becomes `ready` once the
    bucket holds exactly the declared bytes."""
    return Response(data=await service.complete(principal, file_id, body))


@router.get(
    "/{file_id}/parts",
    responses=error_responses(*OWNED, ObjectStorageUnavailable, service.NotMultipart, service.UploadAlreadyComplete),
)
async def list_parts(
    principal: CurrentPrincipal,
    file_id: FileId,
    limit: Annotated[int, Query(ge=1, le=PART_URLS, description="At most this many URLs of missing parts")] = 100,
) -> Response[PartsPublic]:
    """List the parts uploaded so far, with fresh URLs for the missing ones: how an upload resumes."""
    return Response(data=await service.parts(principal, file_id, limit))


@router.get("/{file_id}", responses=error_responses(*OWNED))
async def get_file(principal: CurrentPrincipal, file_id: FileId) -> Response[FilePublic]:
    """Get one file's metadata."""
    return Response(data=await service.get(principal, file_id))


@router.get("/{file_id}/download", responses=error_responses(*OWNED, service.UploadIncomplete))
async def download_file(principal: CurrentPrincipal, file_id: FileId) -> Response[DownloadPublic]:
    """Get a presigned URL that downloads a ready file under its original name."""
    return Response(data=await service.download(principal, file_id))


@router.delete("/{file_id}", responses=error_responses(*OWNED, ObjectStorageUnavailable))
async def delete_file(principal: CurrentPrincipal, file_id: FileId, redis: RedisDep) -> Response[None]:
    """Delete a file: its object in the bucket (or its unfinished multipart upload), then its metadata."""
    await service.delete(redis, principal, file_id)
    return Response()
