"""The incidents API: one router assembled from a module per area."""

from ninja import Router

from certnet.incidents.api.incidents import router as incidents_router

router = Router()
router.add_router("", incidents_router)

__all__ = ["router"]
