"""The incidents API: one router assembled from a module per area."""

from ninja import Router

from certnet.incidents.api.incidents import router as incidents_router

router = Router()
router.add_router("", incidents_router)
router.add_router("", "certnet.incidents.api.work.router")
router.add_router("", "certnet.incidents.api.evidence.router")
router.add_router("", "certnet.incidents.api.mail.router")

__all__ = ["router"]
