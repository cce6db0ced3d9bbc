"""Who is acting, and what they may see. Refusals say "not found" so that nothing leaks."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from domain.errors import DomainError, NotFound
from domain.waiting import Waiting


class Role(StrEnum):
    CUSTOMER = "customer"
    STORE = "store"
    ADMIN = "admin"


class Forbidden(DomainError):
    code = "FORBIDDEN"


@dataclass(frozen=True)
class Actor:
    role: Role
    subject: str
    store_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def staffs(self, store_id: int) -> bool:
        """Acts for the store: its own staff, or an admin."""
        return self.is_admin or (self.role is Role.STORE and self.store_id == store_id)

    def require_staff(self, store_id: int) -> None:
        if not self.staffs(store_id):
            raise Forbidden(f"this needs a token of store {store_id}'s staff or an admin")

    def require_own_store(self, store_id: int) -> None:
        if self.role is not Role.STORE or self.store_id != store_id:
            raise Forbidden(f"this needs a token of store {store_id}'s staff")

    def require_role(self, *roles: Role) -> None:
        if self.role not in roles:
            raise Forbidden(f"this needs the role {' or '.join(roles)}")

    def may_see(self, waiting: Waiting) -> bool:
        if self.staffs(waiting.store_id):
            return True
        return self.role is Role.CUSTOMER and waiting.customer.user_id == self.subject

    def require_sight(self, waiting: Waiting) -> None:
        if not self.may_see(waiting):
            raise NotFound("waiting not found")
