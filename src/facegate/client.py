"""A small Python client for the facegate HTTP API (httpx), used by the tests and the README.

    from facegate.client import FacegateClient

    with FacegateClient("http://localhost:8000", key="fg_...") as fg:
        fg.create_collection("victims-2026")
        fg.index_faces("victims-2026", Path("photo.jpg"), subject="person-17",
                       purpose="victim_identification", case_reference="CASE-42")
        hits = fg.search("victims-2026", Path("probe.jpg"), purpose="victim_identification",
                         case_reference="CASE-42")
        hits["matches"], hits["decision"]

Methods return the JSON answer as a dict. An error answer raises `FacegateHTTPError`, which
carries the status, the stable `code`, the message, the request id and the whole error body
(for a policy denial, its `decision`). Images are given as bytes or as a path, and are sent
base64-encoded in JSON (`multipart=True` sends them as a file upload instead).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, Self

import httpx

Image = bytes | Path


class FacegateHTTPError(Exception):
    """An error answer: `status`, `code` (e.g. MORATORIUM), `message`, `request_id`, `body`."""

    def __init__(self, status: int, body: dict[str, Any], request_id: str | None) -> None:
        found = body.get("error")
        error: dict[str, Any] = found if isinstance(found, dict) else {}
        self.status = status
        self.body = body
        self.error = error
        self.code: str = str(error.get("code", "HTTP_ERROR"))
        self.message: str = str(error.get("message", body))
        self.request_id = error.get("request_id") or request_id
        super().__init__(f"{status} {self.code}: {self.message}")


def _bytes(image: Image) -> bytes:
    return image.read_bytes() if isinstance(image, Path) else image


def _fields(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


class FacegateClient:
    """One API key against one server; thread-safe (httpx.Client is)."""

    def __init__(self, base_url: str, key: str | None, timeout: float = 120.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout, transport=transport)
        self.last_request_id: str | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # --- plumbing -----------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """Send a request; the JSON answer, or `FacegateHTTPError`."""
        response = self.http.request(method, path, **kwargs)
        self.last_request_id = response.headers.get("x-request-id")
        try:
            body = response.json()
        except ValueError:
            body = {"error": {"code": "HTTP_ERROR", "message": response.text[:500]}}
        if response.is_error:
            raise FacegateHTTPError(response.status_code, body, self.last_request_id)
        return body  # type: ignore[no-any-return]

    def _image_call(
        self, path: str, images: dict[str, Image], fields: dict[str, Any], multipart: bool
    ) -> dict[str, Any]:
        if multipart:
            files = {name: (f"{name}.img", _bytes(img), "application/octet-stream") for name, img in images.items()}
            return self.request("POST", path, files=files, data={k: str(v) for k, v in fields.items()})
        encoded = {name: {"bytes": base64.b64encode(_bytes(img)).decode()} for name, img in images.items()}
        return self.request("POST", path, json={**encoded, **fields})

    # --- collections --------------------------------------------------------------------
    # Every method takes `purpose` and `case_reference`: a moratorium may exempt any
    # operation by purpose. POST sends them in the JSON body, GET and DELETE as query
    # parameters, as the API takes them.
    def create_collection(self, collection_id: str, description: str = "", *, purpose: str | None = None,
                          case_reference: str | None = None, retention_days: int | None = None,
                          keep_thumbnails: bool = False) -> dict[str, Any]:
        body = _fields(collection_id=collection_id, description=description, purpose=purpose,
                       case_reference=case_reference, retention_days=retention_days,
                       keep_thumbnails=True if keep_thumbnails else None)
        return self.request("POST", "/v1/collections", json=body)

    def list_collections(self, *, purpose: str | None = None, case_reference: str | None = None) -> dict[str, Any]:
        return self.request("GET", "/v1/collections", params=_fields(purpose=purpose, case_reference=case_reference))

    def describe_collection(self, collection_id: str, *, purpose: str | None = None,
                            case_reference: str | None = None) -> dict[str, Any]:
        return self.request("GET", f"/v1/collections/{collection_id}",
                            params=_fields(purpose=purpose, case_reference=case_reference))

    def delete_collection(self, collection_id: str, *, purpose: str | None = None,
                          case_reference: str | None = None) -> dict[str, Any]:
        return self.request("DELETE", f"/v1/collections/{collection_id}",
                            params=_fields(purpose=purpose, case_reference=case_reference))

    # --- faces and subjects --------------------------------------------------------------
    def index_faces(
        self, collection_id: str, image: Image, *, purpose: str | None = None, case_reference: str | None = None,
        subject: str | None = None, external_image_id: str | None = None, max_faces: int | None = None,
        quality_filter: str | None = None, consent_reference: str | None = None, multipart: bool = False,
        subject_box: tuple[int, int, int, int] | None = None, index_unlabelled: bool | None = None,
    ) -> dict[str, Any]:
        """Enrol faces; with a `subject`, only the subject's face (the central one, or the one
        at `subject_box` = (left, top, width, height)) unless `index_unlabelled`."""
        box: Any = None
        if subject_box is not None:
            box = ",".join(map(str, subject_box)) if multipart else dict(
                zip(("left", "top", "width", "height"), subject_box))
        fields = _fields(purpose=purpose, case_reference=case_reference, subject=subject,
                         external_image_id=external_image_id, max_faces=max_faces,
                         quality_filter=quality_filter, consent_reference=consent_reference,
                         subject_box=box, index_unlabelled=index_unlabelled)
        return self._image_call(f"/v1/collections/{collection_id}/faces", {"image": image}, fields, multipart)

    def list_faces(self, collection_id: str, *, subject: str | None = None, limit: int = 100,
                   next_token: str | None = None, purpose: str | None = None,
                   case_reference: str | None = None) -> dict[str, Any]:
        params = _fields(subject=subject, limit=limit, next_token=next_token, purpose=purpose,
                         case_reference=case_reference)
        return self.request("GET", f"/v1/collections/{collection_id}/faces", params=params)

    def delete_face(self, collection_id: str, face_id: str, *, purpose: str | None = None,
                    case_reference: str | None = None) -> dict[str, Any]:
        return self.request("DELETE", f"/v1/collections/{collection_id}/faces/{face_id}",
                            params=_fields(purpose=purpose, case_reference=case_reference))

    def create_subject(
        self, collection_id: str, subject: str, attributes: dict[str, str] | None = None, *,
        purpose: str | None = None, case_reference: str | None = None,
    ) -> dict[str, Any]:
        body = _fields(subject=subject, attributes=attributes or {}, purpose=purpose, case_reference=case_reference)
        return self.request("POST", f"/v1/collections/{collection_id}/subjects", json=body)

    def associate_faces(self, collection_id: str, subject: str, face_ids: list[str], *,
                        purpose: str | None = None, case_reference: str | None = None) -> dict[str, Any]:
        return self.request("POST", f"/v1/collections/{collection_id}/subjects/{subject}/faces",
                            json=_fields(face_ids=face_ids, purpose=purpose, case_reference=case_reference))

    def list_subjects(self, collection_id: str, *, limit: int = 100, next_token: str | None = None,
                      purpose: str | None = None, case_reference: str | None = None) -> dict[str, Any]:
        return self.request("GET", f"/v1/collections/{collection_id}/subjects",
                            params=_fields(limit=limit, next_token=next_token, purpose=purpose,
                                           case_reference=case_reference))

    def erase_subject(self, collection_id: str, subject: str, *, purpose: str | None = None,
                      case_reference: str | None = None) -> dict[str, Any]:
        """Right to erasure: the subject and all its faces."""
        return self.request("DELETE", f"/v1/collections/{collection_id}/subjects/{subject}",
                            params=_fields(purpose=purpose, case_reference=case_reference))

    # --- search, compare, detect --------------------------------------------------------
    def search(
        self, collection_id: str, image: Image, *, purpose: str | None = None, case_reference: str | None = None,
        max_results: int | None = None, max_fmr: float | None = None, threshold: float | None = None,
        mode: str | None = None, multipart: bool = False,
    ) -> dict[str, Any]:
        """Search by image: `{"matches": [...], "decision": {...}, ...}`."""
        fields = _fields(purpose=purpose, case_reference=case_reference, max_results=max_results,
                         max_fmr=max_fmr, threshold=threshold, mode=mode)
        return self._image_call(f"/v1/collections/{collection_id}/search", {"image": image}, fields, multipart)

    def search_face(self, collection_id: str, face_id: str, **fields: Any) -> dict[str, Any]:
        return self.request("POST", f"/v1/collections/{collection_id}/faces/{face_id}/search", json=_fields(**fields))

    def search_subject(self, collection_id: str, subject: str, **fields: Any) -> dict[str, Any]:
        path = f"/v1/collections/{collection_id}/subjects/{subject}/search"
        return self.request("POST", path, json=_fields(**fields))

    def compare(self, source: Image, target: Image, *, purpose: str | None = None, case_reference: str | None = None,
                max_fmr: float | None = None, multipart: bool = False) -> dict[str, Any]:
        fields = _fields(purpose=purpose, case_reference=case_reference, max_fmr=max_fmr)
        return self._image_call("/v1/compare", {"source_image": source, "target_image": target}, fields, multipart)

    def detect(self, image: Image, *, purpose: str | None = None, case_reference: str | None = None,
               multipart: bool = False) -> dict[str, Any]:
        fields = _fields(purpose=purpose, case_reference=case_reference)
        return self._image_call("/v1/detect", {"image": image}, fields, multipart)

    # --- video (asynchronous jobs) --------------------------------------------------------
    def start_video_search(
        self, collection_id: str, video: Image, *, purpose: str | None = None, case_reference: str | None = None,
        fps: float | None = None, max_fmr: float | None = None,
    ) -> dict[str, Any]:
        """Upload a stored video for face search: `{"job_id"}` (202); poll `get_video_search`."""
        fields = _fields(purpose=purpose, case_reference=case_reference, fps=fps, max_fmr=max_fmr)
        return self._image_call(f"/v1/collections/{collection_id}/video-searches", {"video": video}, fields, True)

    def get_video_search(self, job_id: str) -> dict[str, Any]:
        """A video search's status, progress and (once succeeded) results."""
        return self.request("GET", f"/v1/video-searches/{job_id}")

    # --- sharing (the owner) and review (reviewer role) ------------------------------------
    def share_collection(self, collection_id: str, tenant: str, operations: list[str],
                         purposes: list[str] | None = None, *, purpose: str | None = None,
                         case_reference: str | None = None) -> dict[str, Any]:
        body = _fields(operations=operations, purposes=purposes, purpose=purpose, case_reference=case_reference)
        return self.request("PUT", f"/v1/collections/{collection_id}/grants/{tenant}", json=body)

    def unshare_collection(self, collection_id: str, tenant: str, operations: list[str] | None = None, *,
                           purpose: str | None = None, case_reference: str | None = None) -> dict[str, Any]:
        params = _fields(operations=operations or None, purpose=purpose, case_reference=case_reference)
        return self.request("DELETE", f"/v1/collections/{collection_id}/grants/{tenant}", params=params or None)

    def list_reviews(self, *, status: str = "pending", case_reference: str | None = None, after_id: int = 0,
                     limit: int = 100, purpose: str | None = None) -> dict[str, Any]:
        """The tenant's leads; `case_reference` filters them and is the case the listing serves."""
        params = _fields(status=status, case_reference=case_reference, after_id=after_id, limit=limit,
                         purpose=purpose)
        return self.request("GET", "/v1/reviews", params=params)

    def review(self, review_id: int, verdict: str, note: str = "", *, purpose: str | None = None,
               case_reference: str | None = None) -> dict[str, Any]:
        body = _fields(verdict=verdict, note=note, purpose=purpose, case_reference=case_reference)
        return self.request("POST", f"/v1/reviews/{review_id}", json=body)

    # --- audit (auditor role) -----------------------------------------------------------
    def verify_audit(self, *, purpose: str | None = None, case_reference: str | None = None) -> dict[str, Any]:
        return self.request("GET", "/v1/audit/verify", params=_fields(purpose=purpose, case_reference=case_reference))

    def audit_checkpoint(self, *, purpose: str | None = None, case_reference: str | None = None) -> dict[str, Any]:
        """The latest signed checkpoint (keep it to verify the log against later)."""
        return self.request("GET", "/v1/audit/checkpoint",
                            params=_fields(purpose=purpose, case_reference=case_reference))

    def export_audit(self, *, after_seq: int = 0, limit: int = 100, purpose: str | None = None,
                     case_reference: str | None = None) -> dict[str, Any]:
        return self.request("GET", "/v1/audit/export", params=_fields(
            after_seq=after_seq, limit=limit, purpose=purpose, case_reference=case_reference))

    def transparency_report(self, *, since: str | None = None, until: str | None = None,
                            purpose: str | None = None, case_reference: str | None = None) -> dict[str, Any]:
        return self.request("GET", "/v1/audit/report", params=_fields(
            since=since, until=until, purpose=purpose, case_reference=case_reference))

    # --- health ---------------------------------------------------------------------------
    def healthz(self) -> dict[str, Any]:
        return self.request("GET", "/healthz")

    def readyz(self) -> dict[str, Any]:
        return self.request("GET", "/readyz")
