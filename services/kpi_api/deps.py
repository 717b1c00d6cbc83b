"""Dependencies of the KPI API routes: the request context, the operator and its scope.

Scope rule (``services/core/scopes.py``, docs/units.md): an operator key is scoped to the
unit its code denoted when the key was issued, the units below it, what it was made of and,
once it has ended, what it became; a province key sees everything. Direct requests about a
unit outside the scope answer 403. Rankings and scores are computed over every unit of the
level - so ranks mean the same for everyone - but a scoped operator receives only the rows
of units inside its scope (its own row, with its province-wide rank).
"""

import datetime as dt
from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from schemas.kpi import KpiRegistry
from services.core.scopes import scope_unit, visible
from services.core.units import Unit, UnitRegistry
from services.kpi_api.audit import AccessLog
from services.kpi_api.entities import EntityService
from services.kpi_api.service import KpiService
from services.readmodels.counters import KpiStore
from services.runtime.auth import KeyStore, Principal
from services.runtime.clock import Clock
from services.runtime.problems import Forbidden, Unavailable
from services.runtime.ratelimit import RateLimiter
from services.runtime.units import RegistryCache


@dataclass(slots=True)
class ApiContext:
    pool: asyncpg.Pool
    keys: KeyStore
    units: RegistryCache
    kpis: KpiRegistry
    clock: Clock
    limiter: RateLimiter
    access: AccessLog

    def registry(self) -> UnitRegistry:
        registry = self.units.registry
        if registry is None:
            raise Unavailable("the unit registry is not loaded yet")
        return registry

    def service(self) -> KpiService:
        return KpiService(KpiStore(self.pool), self.kpis, self.registry())

    def entities(self) -> EntityService:
        return EntityService(KpiStore(self.pool), self.kpis, self.registry())


def get_context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[ApiContext, Depends(get_context)]


@dataclass(frozen=True, slots=True)
class Operator:
    principal: Principal
    registry: UnitRegistry

    @property
    def scope(self) -> str:
        assert self.principal.scope_unit is not None
        return self.principal.scope_unit

    @property
    def scope_unit(self) -> Unit | None:
        return scope_unit(self.registry, self.scope, self.principal.issued_on)

    def may_see(self, unit: Unit) -> bool:
        scope = self.scope_unit
        return scope is not None and unit.key in visible(self.registry, scope)

    def may_see_key(self, key: str) -> bool:
        scope = self.scope_unit
        return scope is not None and key in visible(self.registry, scope)

    def require(self, unit: Unit) -> None:
        if not self.may_see(unit):
            raise Forbidden(
                f"this credential is scoped to unit {self.scope!r} (its units below, before and after it); "
                f"unit {unit.code!r} ({unit.name}, {unit.describe_validity()}) is outside it"
            )


async def get_operator(request: Request, ctx: ContextDep) -> Operator:
    principal = await ctx.keys.authenticate(request.headers.get("authorization"))
    if principal.kind != "operator":
        raise Forbidden("sector-system (ingest) credentials cannot read KPIs")
    ctx.limiter.acquire(principal.key_id)
    registry = ctx.units.registry
    if registry is None:
        raise Unavailable("the unit registry is not loaded yet")
    request.state.principal = principal
    return Operator(principal, registry)


OperatorDep = Annotated[Operator, Depends(get_operator)]


def now(ctx: ApiContext) -> dt.datetime:
    return ctx.clock.now()
