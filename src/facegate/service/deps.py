"""Dependencies of the endpoints, named as `Annotated` aliases (the FastAPI template's `SessionDep`).

- `EngineDep`: the one `Facegate` engine this worker built at startup.
- `TenantDep`: who is calling, admitted by `GatedRoute` (the bearer key was checked
  before the body was read); declaring it also publishes the bearer scheme in OpenAPI.
- `CallerDep`: the tenant as a `Caller` for requests without a body (listing, deleting,
  erasure), with `purpose` and `case_reference` from the query string (a moratorium may
  exempt any operation by purpose); routes with a body build theirs from the body.

There is no permission check here: every endpoint calls one operation, and the operation
passes the gate, which decides and records. The gate lives in one place.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from facegate.engine import Facegate
from facegate.gate import Caller
from facegate.service.admission import Tenant
from facegate.service.schemas import CaseReferenceQuery, PurposeQuery

bearer = HTTPBearer(
    auto_error=False, scheme_name="apiKey",
    description="An API key from `facegate key create TENANT`, sent as `Authorization: Bearer fg_...`.",
)


def get_engine(request: Request) -> Facegate:
    engine: Facegate = request.app.state.engine
    return engine


def get_tenant(request: Request, _key: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Tenant:
    tenant: Tenant = request.state.tenant
    return tenant


EngineDep = Annotated[Facegate, Depends(get_engine)]
TenantDep = Annotated[Tenant, Depends(get_tenant)]


def get_caller(tenant: TenantDep, purpose: PurposeQuery = None, case_reference: CaseReferenceQuery = None) -> Caller:
    """The caller of a request without a body: purpose and case reference as query parameters."""
    return tenant.caller(purpose, case_reference)


CallerDep = Annotated[Caller, Depends(get_caller)]
